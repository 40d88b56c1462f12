#include "framework/io/checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>

#include "framework/core/error.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"

namespace shrink::io {

namespace {

constexpr const char* kFormat = "shrink-checkpoint-1";
constexpr const char* kValuePrefix = "v:";

// CRC-32 over the tensors (sorted by name: name, dtype, shape, bytes) and the values.
uint32_t state_checksum(const std::map<std::string, Tensor>& tensors,
                        const std::map<std::string, std::string>& values) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto feed = [&crc](const void* p, size_t n) {
    const auto* bytes = static_cast<const Bytef*>(p);
    while (n > 0) {  // crc32 takes a uInt length
      const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
      crc = crc32(crc, bytes, chunk);
      bytes += chunk;
      n -= chunk;
    }
  };
  auto feed_text = [&feed](const std::string& s) {
    const uint64_t n = s.size();
    feed(&n, sizeof n);
    feed(s.data(), s.size());
  };
  for (const auto& [name, t] : tensors) {
    feed_text(name);
    const uint8_t dtype = static_cast<uint8_t>(t.dtype());
    feed(&dtype, 1);
    for (int64_t d : t.shape()) feed(&d, sizeof d);
    Tensor c = t.device() == Device::CPU ? t : t.to(Device::CPU);
    feed(c.raw_data(), c.numel() * dtype_size(c.dtype()));
  }
  for (const auto& [key, value] : values) {
    feed_text(key);
    feed_text(value);
  }
  return static_cast<uint32_t>(crc);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08" PRIx32, v);
  return buf;
}

// "step-000000000042.ckpt" -> 42; -1 for any other name.
int64_t step_of(const std::string& name) {
  const std::string head = "step-", tail = ".ckpt";
  if (name.size() != head.size() + 12 + tail.size() || name.compare(0, head.size(), head) != 0 ||
      name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
    return -1;
  int64_t step = 0;
  for (size_t i = head.size(); i < head.size() + 12; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) out.emplace_back(e->d_name);
  ::closedir(d);
  return out;
}

}  // namespace

void StateDict::put(const std::string& key, const Tensor& t) {
  SHRINK_CHECK(t.defined(), "StateDict::put: '", key, "' is an undefined tensor");
  SHRINK_CHECK(!has(key), "StateDict::put: '", key, "' is written twice");
  tensors_[key] = t.detach();
}

void StateDict::put_text(const std::string& key, const std::string& v) {
  SHRINK_CHECK(!has(key), "StateDict::put: '", key, "' is written twice");
  values_[key] = v;
}

void StateDict::put_int(const std::string& key, int64_t v) { put_text(key, std::to_string(v)); }

void StateDict::put_real(const std::string& key, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  put_text(key, buf);
}

Tensor StateDict::tensor(const std::string& key) const {
  auto it = tensors_.find(key);
  SHRINK_CHECK(it != tensors_.end(), source, ": the checkpoint has no tensor '", key,
               "' (was it written by a different command or configuration?)");
  used_.insert(key);
  return it->second;
}

const std::string& StateDict::text(const std::string& key) const {
  auto it = values_.find(key);
  SHRINK_CHECK(it != values_.end(), source, ": the checkpoint has no value '", key,
               "' (was it written by a different command or configuration?)");
  used_.insert(key);
  return it->second;
}

int64_t StateDict::integer(const std::string& key) const {
  const std::string& s = text(key);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  SHRINK_CHECK(!s.empty() && errno == 0 && *end == '\0', source, ": value '", key, "' = '", s,
               "' is not an integer");
  return v;
}

double StateDict::real(const std::string& key) const {
  const std::string& s = text(key);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  SHRINK_CHECK(!s.empty() && *end == '\0', source, ": value '", key, "' = '", s, "' is not a number");
  return v;
}

void StateDict::restore(const std::string& key, Tensor& dst) const {
  Tensor saved = tensor(key);
  if (!dst.defined()) {
    dst = saved.contiguous_copy();
    return;
  }
  SHRINK_CHECK(saved.shape() == dst.shape() && saved.dtype() == dst.dtype(), source, ": '", key,
               "' is ", saved.describe(), " in the checkpoint but ", dst.describe(), " in this run");
  dst.copy_(saved.device() == dst.device() ? saved : saved.to(dst.device()));
}

bool StateDict::restore_if_present(const std::string& key, Tensor& dst) const {
  if (!tensors_.count(key)) return false;
  restore(key, dst);
  return true;
}

std::vector<std::string> StateDict::unused() const {
  std::vector<std::string> out;
  for (const auto& [k, t] : tensors_)
    if (!used_.count(k)) out.push_back(k);
  for (const auto& [k, v] : values_)
    if (!used_.count(k)) out.push_back(k);
  return out;
}

std::string checkpoint_path(const std::string& dir, int64_t step) {
  SHRINK_CHECK(step >= 0 && step < 1000000000000LL, "checkpoint_path: step ", step, " out of range");
  char name[32];
  std::snprintf(name, sizeof name, "step-%012lld.ckpt", static_cast<long long>(step));
  return dir + "/" + name;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  for (const std::string& name : dir_entries(dir)) {
    const int64_t step = step_of(name);
    if (step >= 0) found.emplace_back(step, dir + "/" + name);
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (auto& [s, path] : found) out.push_back(path);
  return out;
}

std::string save_checkpoint(const std::string& dir, int64_t step, const StateDict& state, int keep) {
  SHRINK_CHECK(keep >= 1, "save_checkpoint: keep must be at least 1, got ", keep);
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
    fail("save_checkpoint: cannot create directory '", dir, "': ", std::strerror(errno));
  std::map<std::string, std::string> metadata;
  for (const auto& [k, v] : state.values()) metadata[kValuePrefix + k] = v;
  metadata["shrink.format"] = kFormat;
  metadata["shrink.checksum"] = hex32(state_checksum(state.tensors(), state.values()));
  const std::string path = checkpoint_path(dir, step);
  std::vector<std::pair<std::string, Tensor>> tensors(state.tensors().begin(), state.tensors().end());
  save_safetensors(path, tensors, metadata);
  // Only after the new checkpoint is in place: checkpoints of later steps (a run this one
  // superseded: it started afresh or resumed from an earlier one), older ones beyond `keep`, and
  // temporary files of writes that were interrupted (a killed run).
  int kept = 0;
  for (const std::string& file : list_checkpoints(dir)) {
    const size_t slash = file.find_last_of('/');
    const int64_t s = step_of(slash == std::string::npos ? file : file.substr(slash + 1));
    if (s > step || (s <= step && ++kept > keep)) ::unlink(file.c_str());
  }
  for (const std::string& name : dir_entries(dir))
    if (name.find(".ckpt.tmp.") != std::string::npos) ::unlink((dir + "/" + name).c_str());
  return path;
}

StateDict load_checkpoint(const std::string& path) { return parse_checkpoint(read_file(path), path); }

StateDict parse_checkpoint(const std::string& bytes, const std::string& path) {
  SafetensorsFile file = parse_safetensors(bytes, path);
  auto meta = [&](const char* key) -> const std::string& {
    auto it = file.metadata.find(key);
    SHRINK_CHECK(it != file.metadata.end(), path, ": not a shrink checkpoint (no '", key, "' in __metadata__)");
    return it->second;
  };
  SHRINK_CHECK(meta("shrink.format") == kFormat, path, ": checkpoint format '", meta("shrink.format"),
               "', expected '", kFormat, "'");
  std::map<std::string, Tensor> tensors(file.tensors.begin(), file.tensors.end());
  std::map<std::string, std::string> values;
  const std::string prefix = kValuePrefix;
  for (const auto& [k, v] : file.metadata)
    if (k.compare(0, prefix.size(), prefix) == 0) values[k.substr(prefix.size())] = v;
  const std::string expected = meta("shrink.checksum"), actual = hex32(state_checksum(tensors, values));
  SHRINK_CHECK(expected == actual, path, ": checksum mismatch (the metadata says ", expected,
               ", the contents give ", actual, "): the file is damaged");
  StateDict state;
  for (auto& [k, t] : tensors) state.put(k, t);
  for (auto& [k, v] : values) state.put_text(k, v);
  state.source = path;
  return state;
}

std::optional<StateDict> load_latest_checkpoint(const std::string& dir, std::ostream* log) {
  for (const std::string& path : list_checkpoints(dir)) {
    try {
      return load_checkpoint(path);
    } catch (const Error& e) {
      if (log) *log << "checkpoint: skipping " << path << ": " << e.what() << "\n";
    }
  }
  return std::nullopt;
}

}  // namespace shrink::io
