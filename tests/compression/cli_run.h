// Runs the built `shrink` CLI for the end-to-end tests: the exit status and stdout (stderr is
// discarded; the commands print progress there).
#pragma once
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include "framework/data/fashion_mnist.h"

namespace shrink::testing {

struct CliResult {
  int status;
  std::string out;
};

// Whether Debian's dataset-fashion-mnist (or $SHRINK_FASHION_MNIST_DIR) is there; the tests
// that train skip with a message without it.
inline bool have_fashion_mnist() {
  return std::filesystem::exists(data::default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz");
}

inline CliResult run_cli(const std::string& command, const std::string& args) {
  const std::string cmd = std::string(SHRINK_CLI_PATH) + " " + command + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  BOOST_REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

}  // namespace shrink::testing
