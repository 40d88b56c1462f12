// --checkpoint / --resume end to end: `shrink train` killed with SIGKILL at random moments and
// resumed writes the same weights, byte for byte, as the run that was never killed; `shrink
// prune` (Taylor's training, then fine-tuning: two training calls) resumed from an older
// checkpoint gives the same masks and accuracy.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "compression/cli_run.h"
#include "framework/data/fashion_mnist.h"
#include "framework/io/atomic_file.h"
#include "framework/io/checkpoint.h"

namespace fs = std::filesystem;
using shrink::testing::run_cli;

namespace {


// `shrink <args...>` in a child process (output discarded), SIGKILLed after `ms` milliseconds
// unless it finished first. Returns whether it was killed.
bool run_and_kill(const std::vector<std::string>& args, int ms) {
  std::fflush(nullptr);  // or the child would write the parent's buffered output again
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(SHRINK_CLI_PATH)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::execv(SHRINK_CLI_PATH, argv.data());
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& a : v) s += " " + a;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_resume)

BOOST_AUTO_TEST_CASE(train_killed_and_resumed_writes_the_same_weights) {
  if (!shrink::testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("shrink_cli_resume_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::vector<std::string> common{"--model", "lenet5", "--epochs", "2", "--limit", "1280", "--threads", "1",
                                        "--seed", "4", "--checkpoint-every", "2"};
  const std::string expected = (dir / "expected.safetensors").string();
  BOOST_REQUIRE(run_cli("train", join(common) + " --save " + expected).status == 0);

  std::mt19937 rng(7);
  int killed = 0;
  for (int trial = 0; trial < 4; ++trial) {
    const std::string ckpt = (dir / ("ckpt" + std::to_string(trial))).string();
    const std::string got = (dir / ("got" + std::to_string(trial) + ".safetensors")).string();
    std::vector<std::string> args{"train"};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), {"--checkpoint", ckpt, "--save", got});
    killed += run_and_kill(args, std::uniform_int_distribution<int>(150, 900)(rng));
    fs::remove(got);
    // The same command with --resume in place of --checkpoint.
    BOOST_REQUIRE(run_cli("train", join(common) + " --resume " + ckpt + " --save " + got).status == 0);
    BOOST_TEST((shrink::io::read_file(got) == shrink::io::read_file(expected)), "trial " << trial);
  }
  BOOST_TEST_MESSAGE(killed << " of 4 runs were killed before they finished");
  BOOST_TEST(killed > 0);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(prune_resumed_in_its_finetuning_gives_the_same_masks) {
  if (!shrink::testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("shrink_cli_resume_prune_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "cfg.json") << R"([{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])";
  const std::string common = "--model lenet5 --config " + (dir / "cfg.json").string() +
                             " --pruner taylor --train-steps 6 --limit 320 --finetune-epochs 1 --threads 1 --json";
  const std::string full_dir = (dir / "full").string(), part_dir = (dir / "part").string();
  auto full = run_cli("prune", common + " --checkpoint " + full_dir + " --checkpoint-every 4 --save-masks " +
                                   (dir / "a.safetensors").string());
  BOOST_REQUIRE(full.status == 0);
  // 6 Taylor steps then 5 fine-tuning steps: the kept checkpoints are steps 8 and 4. Resume from
  // step 8 (inside the fine-tuning) and from step 4 (inside Taylor's gathering).
  for (int64_t step : {8, 4}) {
    fs::remove_all(part_dir);
    fs::create_directories(part_dir);
    fs::copy_file(shrink::io::checkpoint_path(full_dir, step), shrink::io::checkpoint_path(part_dir, step));
    auto resumed = run_cli("prune", common + " --resume " + part_dir + " --checkpoint-every 4 --save-masks " +
                                        (dir / "b.safetensors").string());
    BOOST_REQUIRE(resumed.status == 0);
    BOOST_TEST(resumed.out == full.out, "resumed at step " << step);  // masks' sparsity and both accuracies
    BOOST_TEST((shrink::io::read_file((dir / "a.safetensors").string()) ==
                shrink::io::read_file((dir / "b.safetensors").string())));
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(usage_errors) {
  auto r = run_cli("train", "--model lenet5 --checkpoint /tmp/a --resume /tmp/b");
  BOOST_TEST(r.status != 0);
  // A fresh --checkpoint into a directory that holds another run's checkpoints.
  const fs::path dir = fs::temp_directory_path() / ("shrink_cli_resume_used_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  shrink::io::StateDict s;
  s.put_int("x", 1);
  shrink::io::save_checkpoint(dir.string(), 5, s);
  auto used = run_cli("train", "--model lenet5 --epochs 1 --limit 64 --checkpoint " + dir.string());
  BOOST_TEST(used.status != 0);
  BOOST_TEST(fs::exists(shrink::io::checkpoint_path(dir.string(), 5)));  // left as it was
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
