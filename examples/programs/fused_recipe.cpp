// Example: a fused recipe — prune, quantize and distil LeNet-5 in one training run — through the
// same recipe runner as `shrink compress`, from C++.
//
//   build/bin/example_fused_recipe [--epochs 1] [--limit N] [--out DIR] [--discard]
//
// The recipe: train the dense model, then one `fuse` stage (FPGM filter pruning, QAT int8 and
// distillation from the dense model, all in the same epochs), then int8 evaluation. The run writes
// every stage and report.{json,md,html} into DIR (new or empty; default: a fresh temporary
// directory) and this program prints the Markdown report. --discard removes DIR afterwards.
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <stdlib.h>

#include "examples/compress/recipe.h"
#include "examples/compress/runner.h"
#include "examples/programs/example_args.h"
#include "framework/data/fashion_mnist.h"
#include "framework/core/error.h"
#include "framework/io/atomic_file.h"

using namespace shrink;

int main(int argc, char** argv) {
  const std::string epochs = examples::string_arg(argc, argv, "--epochs", "1");
  const std::string limit = examples::string_arg(argc, argv, "--limit", "-1");
  if (examples::fashion_mnist_dir().empty()) return 77;
  std::string out = examples::string_arg(argc, argv, "--out", "");
  if (out.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "shrink_fused_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return 1;
    out = pattern;
  }
  bool discard = false;
  for (int i = 1; i < argc; ++i) discard |= std::string(argv[i]) == "--discard";
  struct Discard {  // --discard: the directory goes however the run ends
    bool on;
    std::string dir;
    ~Discard() {
      if (on) std::filesystem::remove_all(dir);
    }
  } cleanup{discard, out};

  const std::string text = R"({
    "model": "lenet5", "seed": 1,
    "data": {"train_limit": )" + limit + R"(, "batch": 64},
    "stages": [
      {"stage": "train", "name": "dense", "epochs": 1},
      {"stage": "fuse", "name": "fused", "epochs": )" + epochs + R"(, "lr": 0.01,
       "prune": {"pruner": "fpgm", "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 0.25}]},
       "quantize": {"quantizer": "qat", "config_list": [
         {"op_types": ["Conv2d", "Linear"], "target_names": ["weight"], "quant_dtype": "int8",
          "quant_scheme": "symmetric", "granularity": "out_channel"},
         {"op_types": ["Conv2d", "Linear"], "target_names": ["_input_0"], "quant_dtype": "uint8"}]},
       "distill": {"config_list": [{"op_names": ["fc3"], "apply_method": "kl"}], "teacher": "dense"}},
      {"stage": "evaluate", "name": "int8", "int8": true}
    ]})";

  try {
    // Parsing checks the whole recipe (and each config list) before anything runs.
    const cli::recipe::Recipe recipe = cli::recipe::parse_recipe(boost::json::parse(text), ".");
    cli::recipe::RunOptions options;
    options.out_dir = out;
    options.log = &std::cerr;
    const cli::recipe::Report report = cli::recipe::run_recipe(recipe, options);
    std::cout << io::read_file(out + "/report.md") << "\nthe whole run: " << out << "\n";
    // The fused stage pruned a quarter of each convolution's filters (rounded down) and quantized
    // every layer to 8 bits.
    for (const auto& layer : report.stages.back().layers) {
      const bool conv = layer.type == "Conv2d";
      if (layer.bits != 8 || (conv && layer.channels - layer.live_channels != layer.channels / 4)) return 1;
    }
  } catch (const cli::recipe::RecipeError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
