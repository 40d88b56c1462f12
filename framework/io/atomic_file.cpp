// POSIX implementation of atomic writes (temp file + fsync + rename) and whole-file reads.
#include "framework/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "framework/core/error.h"

namespace shrink::io {

namespace {

// A per-process counter keeps concurrent writers in one process (threads, or two writes to
// the same path) from sharing a temp name; the pid separates processes.
std::atomic<unsigned long long> g_temp_counter{0};
std::atomic<bool> g_writer{true};

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes the fd (if open) and unlinks the temp file, keeping the errno of the original failure
// for the message rather than whatever the cleanup calls set.
[[noreturn]] void fail_write(const std::string& path, const std::string& tmp, int fd,
                             const char* step, int err) {
  if (fd >= 0) ::close(fd);
  if (!tmp.empty()) ::unlink(tmp.c_str());
  fail("write_file_atomic: cannot write '", path, "': ", step, " failed: ", std::strerror(err));
}

}  // namespace

void set_file_writer(bool writes) { g_writer = writes; }
bool is_file_writer() { return g_writer; }

void write_file_atomic(const std::string& path, const std::string& bytes) {
  SHRINK_CHECK(!path.empty(), "write_file_atomic: empty path");
  if (!g_writer) return;
  std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(::getpid())) + "." +
                    std::to_string(g_temp_counter.fetch_add(1));

  // O_EXCL: never clobber a file we did not create, even if a stale temp has the same name.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail_write(path, "", -1, "creating temp file", errno);

  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_write(path, tmp, fd, "write", errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // Without the fsync, a crash after rename can leave `path` pointing at an empty file.
  if (::fsync(fd) != 0) fail_write(path, tmp, fd, "fsync", errno);
  int rc = ::close(fd);
  if (rc != 0) fail_write(path, tmp, -1, "close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail_write(path, tmp, -1, "rename", errno);

  // Makes the rename itself durable. Best effort: the new file is already in place, and some
  // filesystems refuse fsync on directories.
  int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("read_file: cannot open '", path, "': ", std::strerror(errno));
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    out.reserve(static_cast<size_t>(st.st_size));
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail("read_file: cannot read '", path, "': ", std::strerror(err));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace shrink::io
