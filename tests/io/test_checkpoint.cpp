// Checkpoint files: exact round trip, the checksum rejecting damaged files, the newest complete
// checkpoint chosen, old ones pruned; and crash safety: a writer killed with SIGKILL at random
// moments never leaves a checkpoint file that reads as valid but is not complete.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "framework/core/random.h"
#include "framework/io/atomic_file.h"
#include "framework/io/checkpoint.h"

using namespace shrink;

namespace {

std::string fresh_dir(const std::string& name) {
  std::string dir = "/tmp/shrink_test_ckpt_" + std::to_string(::getpid()) + "_" + name;
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

// A state whose every element encodes `step`, so a reader can tell a complete file of one step.
io::StateDict state_of_step(int64_t step, int64_t numel) {
  io::StateDict s;
  s.put_int("step", step);
  s.put_real("third", 1.0 / 3.0 * static_cast<double>(step));
  std::vector<float> v(static_cast<size_t>(numel), static_cast<float>(step));
  s.put("a", Tensor::from_vector(v, {numel}));
  s.put("b", Tensor::from_vector_i64({step, -step}, {2}));
  return s;
}

bool consistent(const io::StateDict& s) {
  const int64_t step = s.integer("step");
  if (s.real("third") != 1.0 / 3.0 * static_cast<double>(step)) return false;
  for (float x : s.tensor("a").to_vector())
    if (x != static_cast<float>(step)) return false;
  return s.tensor("b").to_vector_i64() == std::vector<int64_t>{step, -step};
}

void flip_byte(const std::string& path, size_t from_end) {
  std::string bytes = io::read_file(path);
  bytes[bytes.size() - from_end] ^= 0x20;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(round_trip_is_exact) {
  const std::string dir = fresh_dir("roundtrip");
  io::StateDict s = state_of_step(7, 100);
  const double awkward = std::nextafter(0.1, 1.0);
  s.put_real("awkward", awkward);
  s.put_real("tiny", 4.9e-324);
  s.put_text("text", "a b\nc");
  const std::string path = io::save_checkpoint(dir, 7, s);
  BOOST_TEST(path == dir + "/step-000000000007.ckpt");
  io::StateDict r = io::load_checkpoint(path);
  BOOST_TEST(consistent(r));
  BOOST_TEST(r.real("awkward") == awkward);  // bit-exact doubles
  BOOST_TEST(r.real("tiny") == 4.9e-324);
  BOOST_TEST(r.text("text") == "a b\nc");
  BOOST_TEST(r.unused().empty());
  BOOST_CHECK_THROW(r.tensor("missing"), Error);
  BOOST_CHECK_THROW(r.integer("text"), Error);
  // restore: in place into a defined tensor (same storage), a copy into an undefined one.
  Tensor dst = Tensor::zeros({100});
  Tensor alias = dst;
  r.restore("a", dst);
  BOOST_TEST(alias.to_vector()[5] == 7.f);
  Tensor wrong = Tensor::zeros({3});
  BOOST_CHECK_THROW(r.restore("a", wrong), Error);
}

BOOST_AUTO_TEST_CASE(generator_state_round_trips) {
  Generator g(42);
  g.normal();  // leaves a spare normal behind
  g.uniform();
  Generator h(0);
  h.set_state(g.state());
  for (int i = 0; i < 5; ++i) BOOST_TEST(g.normal() == h.normal());
  BOOST_TEST(g.next_u64() == h.next_u64());
  BOOST_CHECK_THROW(h.set_state("not a state"), Error);
}

BOOST_AUTO_TEST_CASE(damaged_files_are_rejected_and_the_previous_one_used) {
  const std::string dir = fresh_dir("damaged");
  io::save_checkpoint(dir, 1, state_of_step(1, 64));
  io::save_checkpoint(dir, 2, state_of_step(2, 64));
  // A flipped bit in the data: the file still parses, the checksum does not match.
  flip_byte(io::checkpoint_path(dir, 2), 9);
  try {
    io::load_checkpoint(io::checkpoint_path(dir, 2));
    BOOST_FAIL("a damaged checkpoint loaded");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("checksum mismatch") != std::string::npos, e.what());
  }
  std::ostringstream log;
  auto latest = io::load_latest_checkpoint(dir, &log);
  BOOST_REQUIRE(latest.has_value());
  BOOST_TEST(latest->integer("step") == 1);
  BOOST_TEST(log.str().find("skipping " + io::checkpoint_path(dir, 2)) != std::string::npos, log.str());
  // A truncated file (what a crash without the atomic rename would leave) fails to parse.
  std::string bytes = io::read_file(io::checkpoint_path(dir, 1));
  std::ofstream(io::checkpoint_path(dir, 1), std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  BOOST_CHECK_THROW(io::load_checkpoint(io::checkpoint_path(dir, 1)), Error);
  BOOST_TEST(!io::load_latest_checkpoint(dir, nullptr).has_value());
  BOOST_TEST(!io::load_latest_checkpoint(dir + "/absent", nullptr).has_value());
  // A plain safetensors file is not a checkpoint.
  io::write_file_atomic(io::checkpoint_path(dir, 3), "");
  BOOST_CHECK_THROW(io::load_checkpoint(io::checkpoint_path(dir, 3)), Error);
}

BOOST_AUTO_TEST_CASE(keeps_the_newest_two_and_removes_stale_temporaries) {
  const std::string dir = fresh_dir("keep");
  io::save_checkpoint(dir, 5, state_of_step(5, 8));
  std::ofstream(dir + "/step-000000000006.ckpt.tmp.99999.0") << "partial";
  for (int64_t step : {10, 15, 20}) io::save_checkpoint(dir, step, state_of_step(step, 8));
  const std::vector<std::string> files = io::list_checkpoints(dir);
  BOOST_REQUIRE(files.size() == 2u);
  BOOST_TEST(files[0] == io::checkpoint_path(dir, 20));
  BOOST_TEST(files[1] == io::checkpoint_path(dir, 15));
  BOOST_TEST(!std::ifstream(dir + "/step-000000000006.ckpt.tmp.99999.0").good());
  // A run that started again (or resumed from an earlier checkpoint) supersedes the later ones.
  io::save_checkpoint(dir, 12, state_of_step(12, 8));
  const std::vector<std::string> after = io::list_checkpoints(dir);
  BOOST_REQUIRE(after.size() == 1u);
  BOOST_TEST(after[0] == io::checkpoint_path(dir, 12));
}

// SIGKILL at random moments of a writer that saves checkpoint after checkpoint: whatever is
// left, every file under a checkpoint name verifies and is one complete step, and the newest
// of them is at least the last step the writer reported finished before it was killed.
BOOST_AUTO_TEST_CASE(sigkill_during_writes_never_leaves_a_partial_checkpoint) {
  const std::string dir = fresh_dir("sigkill");
  std::mt19937 rng(12345);
  const int trials = 40;
  int killed_mid_write = 0;
  for (int trial = 0; trial < trials; ++trial) {
    std::system(("rm -rf '" + dir + "'").c_str());
    // Two steps are written before the child starts, so there is always a previous one.
    io::save_checkpoint(dir, 1, state_of_step(1, 1 << 18));
    io::save_checkpoint(dir, 2, state_of_step(2, 1 << 18));
    int pipe_fd[2];
    BOOST_REQUIRE(::pipe(pipe_fd) == 0);
    std::fflush(nullptr);
    const pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      ::close(pipe_fd[0]);
      // 1 MB per checkpoint: each write takes long enough to be interrupted.
      for (int64_t step = 3;; ++step) {
        io::save_checkpoint(dir, step, state_of_step(step, 1 << 18));
        if (::write(pipe_fd[1], &step, sizeof step) != sizeof step) ::_exit(3);
      }
    }
    ::close(pipe_fd[1]);
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 60000)(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    BOOST_TEST(WIFSIGNALED(status));
    int64_t done = 2, step = 0;
    while (::read(pipe_fd[0], &step, sizeof step) == static_cast<ssize_t>(sizeof step)) done = step;
    ::close(pipe_fd[0]);

    const std::vector<std::string> files = io::list_checkpoints(dir);
    BOOST_TEST(!files.empty());
    for (const std::string& f : files) {
      io::StateDict s = io::load_checkpoint(f);  // throws (fails the test) on a partial file
      BOOST_TEST(consistent(s), f);
    }
    auto latest = io::load_latest_checkpoint(dir, nullptr);
    BOOST_REQUIRE(latest.has_value());
    BOOST_TEST(latest->integer("step") >= done);
    if (std::system(("ls '" + dir + "' | grep -q '\\.tmp\\.'").c_str()) == 0) ++killed_mid_write;
  }
  // The kills did land inside writes (a temporary file left behind), not only between them.
  BOOST_TEST(killed_mid_write > 0, killed_mid_write << " of " << trials << " kills interrupted a write");
  BOOST_TEST_MESSAGE(killed_mid_write << " of " << trials << " kills interrupted a write");
}

BOOST_AUTO_TEST_SUITE_END()
