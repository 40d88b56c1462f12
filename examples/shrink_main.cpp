// `shrink`: the command-line front end. Dispatches to one subcommand per file (cmd_*.cpp).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "examples/cli.h"
#include "framework/core/error.h"
#include "framework/dist/communicator.h"
#include "framework/io/atomic_file.h"
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

namespace {
int run(const std::string& cmd, const std::vector<std::string>& args);

// Under mpirun every rank runs the same command on its share of the data; rank 0 prints and
// writes, the others compute the same results silently. Their errors still reach stderr (through
// `real_stderr`, kept here).
std::streambuf* real_stderr = nullptr;

void become_rank(shrink::dist::Communicator& world) {
  if (world.is_writer()) return;
  shrink::io::set_file_writer(false);
  static std::ostream null_stream(nullptr);
  std::cout.rdbuf(null_stream.rdbuf());
  real_stderr = std::cerr.rdbuf(null_stream.rdbuf());
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  std::shared_ptr<shrink::dist::Communicator> world;
  int rc = 1;
  try {
    shrink::dist::init(&argc, &argv);
    world = shrink::dist::world();
    become_rank(*world);
    rc = run(cmd, args);
  } catch (const std::exception& e) {
    if (real_stderr) std::cerr.rdbuf(real_stderr);
    std::cerr << "shrink " << cmd << ": error: ";
    if (world && world->size() > 1) std::cerr << "(rank " << world->rank() << " of " << world->size() << ") ";
    std::cerr << e.what() << "\n";
    rc = 1;
  }
  // A rank that stops with an error (an exception, or a command's own non-zero status such as a
  // bad argument or directory) must not leave the others waiting in a collective: it ends the job.
  if (rc != 0 && world && world->size() > 1) {
    if (real_stderr) std::cerr.rdbuf(real_stderr);
    std::cerr << "shrink " << cmd << ": rank " << world->rank() << " of " << world->size() << " exits with status "
              << rc << "; ending every rank\n"
              << std::flush;
    world->abort(rc);
  }
  shrink::dist::finalize();
  return rc;
}

namespace {
int run(const std::string& cmd, const std::vector<std::string>& args) {
  {
    // Calibration, mask generation and speedup draw progress bars on stderr when it is a terminal
    // (rank 0's only).
    shrink::progress::set_sink(shrink::dist::world()->is_writer() ? &std::cerr : nullptr,
                               shrink::cli::draws_progress(STDERR_FILENO));
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
  }
}
}  // namespace
