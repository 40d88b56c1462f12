// Example: prune LeNet-5 with a v3 config list, then fine-tune the masked model.
//
//   build/bin/example_prune_lenet5 [--epochs 2] [--limit N]   (N training images; default all)
//
// 1. train LeNet-5 for one epoch on Fashion-MNIST;
// 2. L1-norm pruning: half of every convolution's filters, and 70 % of fc1's rows;
// 3. fine-tune with the masks in place (the wrappers keep pruned weights out of every forward);
// 4. check that each target has exactly the sparsity asked for.
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>

#include "compression/pruning/norm_pruners.h"
#include "examples/programs/example_args.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/optim/optimizer.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

int main(int argc, char** argv) {
  const int64_t epochs = examples::int_arg(argc, argv, "--epochs", 2);
  const int64_t limit = examples::int_arg(argc, argv, "--limit", -1);
  const std::string dir = examples::fashion_mnist_dir();
  if (dir.empty()) return 77;

  // 1. The dense model.
  manual_seed(1);
  auto model = models::make_model("lenet5");
  auto optimizer = std::make_shared<optim::SGD>(model->parameters(), 0.05f, 0.9f, 5e-4f);
  auto train_loader = std::make_shared<data::DataLoader>(data::load_fashion_mnist(dir, true, limit), 64, true, 1);
  auto test_loader = std::make_shared<data::DataLoader>(data::load_fashion_mnist(dir, false), 256, false, 1);
  train::Trainer trainer(model, optimizer, train_loader, test_loader);
  trainer.train(1);
  std::cout << std::fixed << std::setprecision(4) << "dense:      test accuracy " << trainer.evaluate().accuracy << "\n";

  // 2. A v3 config list: out-channel granularity is the L1 pruner's default for weights.
  const boost::json::value config = boost::json::parse(R"([
    {"op_types": ["Conv2d"], "sparse_ratio": 0.5},
    {"op_names": ["fc1"], "sparse_ratio": 0.7}
  ])");
  compression::L1NormPruner pruner(model, config);
  const compression::Masks masks = pruner.compress();
  std::cout << "pruned:     test accuracy " << trainer.evaluate().accuracy << "\n";

  // 3. Fine-tuning: the trainer runs the wrapped model, so the masks stay applied.
  trainer.train(epochs);
  std::cout << "fine-tuned: test accuracy " << trainer.evaluate().accuracy << "\n";

  // 4. The masks hold what the config asked for.
  int failures = 0;
  for (const auto& [key, mask] : masks) {
    const double sparsity = 1.0 - mask.sum().item() / static_cast<double>(mask.numel());
    const double asked = key.rfind("fc1.", 0) == 0 ? 0.7 : 0.5;
    std::cout << "  " << std::left << std::setw(14) << key << " sparsity " << sparsity << "\n";
    failures += std::abs(sparsity - asked) > 1e-6;
  }
  return failures == 0 ? 0 : 1;
}
