// `shrink`: the command-line front end. Dispatches to one subcommand per file (cmd_*.cpp).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "examples/cli.h"
#include "framework/core/error.h"
#include "framework/train/progress.h"
#ifdef SHRINK_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace {
void usage(std::ostream& os) {
  os << "usage: shrink <command> [options]\n"
        "commands:\n"
        "  train    train a model of the zoo on Fashion-MNIST\n"
        "  prune    prune a zoo model with a config list and save the masks\n"
        "  quantize quantize a zoo model with a config list and save the calibration\n"
        "  distill  train a zoo student with a distillation loss from a zoo teacher\n"
        "  fuse     prune, quantize and distil a zoo model in one training run\n"
        "  speedup  shrink a pruned model's layers for real and save it as a model file\n"
        "  eval     test accuracy and inference speed of a zoo model or a model file\n"
        "  infer    the same as deployed: float, fake-quantized from a calibration, or int8 kernels\n"
        "  compress run a recipe (train, prune, speedup, quantize, distil, evaluate, export) with a report\n"
        "  explain  show the targets and canonical settings a compression config list selects\n"
        "run 'shrink <command> --help' for the command's options\n";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    // Calibration, mask generation and speedup draw progress bars on stderr when it is a terminal.
    shrink::progress::set_sink(&std::cerr, isatty(STDERR_FILENO) != 0);
#ifdef SHRINK_HAVE_CUDA
    shrink::cuda::init();  // registers the CUDA backend only when a device is present
#endif
    if (cmd == "train") return shrink::cli::cmd_train(args);
    if (cmd == "prune") return shrink::cli::cmd_prune(args);
    if (cmd == "quantize") return shrink::cli::cmd_quantize(args);
    if (cmd == "distill") return shrink::cli::cmd_distill(args);
    if (cmd == "fuse") return shrink::cli::cmd_fuse(args);
    if (cmd == "speedup") return shrink::cli::cmd_speedup(args);
    if (cmd == "eval") return shrink::cli::cmd_eval(args);
    if (cmd == "infer") return shrink::cli::cmd_infer(args);
    if (cmd == "compress") return shrink::cli::cmd_compress(args);
    if (cmd == "explain") return shrink::cli::cmd_explain(args);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      usage(std::cout);
      return 0;
    }
    std::cerr << "shrink: unknown command '" << cmd << "'\n";
    usage(std::cerr);
    return 2;
  } catch (const shrink::Error& e) {
    std::cerr << "shrink " << cmd << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "shrink " << cmd << ": error: " << e.what() << "\n";
    return 1;
  }
}
