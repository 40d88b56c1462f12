// What every example program starts with: "--name value" arguments and the dataset check.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "framework/data/fashion_mnist.h"

namespace examples {

// The value after "--name" on the command line, or `fallback`.
inline std::string string_arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}
inline int64_t int_arg(int argc, char** argv, const std::string& name, int64_t fallback) {
  const std::string v = string_arg(argc, argv, name, "");
  return v.empty() ? fallback : std::atoll(v.c_str());
}

// Fashion-MNIST's directory, or "" after saying where it was looked for (the examples then exit
// with 77, which CTest reports as skipped).
inline std::string fashion_mnist_dir() {
  const std::string dir = shrink::data::default_fashion_mnist_dir();
  if (std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) return dir;
  std::cerr << "Fashion-MNIST not found in " << dir << " (./run installs it)\n";
  return "";
}

}  // namespace examples
