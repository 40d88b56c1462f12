// Example: a pruner of your own on the v1 API — override calc_mask (and update_epoch).
//
//   build/bin/example_custom_v1_pruner [--epochs 3] [--limit N]
//
// GradualFilterPruner zeroes the filters (output channels) of smallest L2 norm. Its sparsity grows
// with the epochs: update_epoch(e) sets it to final * (e + 1) / epochs, and calc_mask — which the v1
// API runs before every forward of each layer — applies it. The training loop is written out to
// show where update_epoch and step go.
#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <string>

#include "compression/v1/v1_api.h"
#include "examples/programs/example_args.h"
#include "framework/core/autograd.h"
#include "framework/core/random.h"
#include "framework/data/dataloader.h"
#include "framework/data/fashion_mnist.h"
#include "framework/ops/ops.h"
#include "framework/optim/optimizer.h"
#include "models/zoo.h"

using namespace shrink;

class GradualFilterPruner : public compression::v1::Pruner {
 public:
  GradualFilterPruner(std::shared_ptr<nn::Module> model, const boost::json::value& config, int64_t epochs)
      : Pruner(std::move(model), config), epochs_(epochs) {}

  Tensor calc_mask(const compression::v1::LayerInfo& layer, const boost::json::object& config) override {
    const Tensor w = layer.module->param("weight");
    const int64_t filters = w.size(0), per = w.numel() / filters;
    const double target = config.at("sparsity").to_number<double>() * progress_;
    const std::vector<float> v = w.to_vector();
    std::vector<double> norm(static_cast<size_t>(filters), 0.0);
    for (int64_t f = 0; f < filters; ++f)
      for (int64_t k = 0; k < per; ++k) norm[f] += static_cast<double>(v[f * per + k]) * v[f * per + k];
    std::vector<int64_t> order(static_cast<size_t>(filters));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norm[a] < norm[b]; });
    Tensor mask = Tensor::ones(w.shape());
    const auto pruned = static_cast<int64_t>(std::floor(target * static_cast<double>(filters)));
    for (int64_t i = 0; i < pruned; ++i) slice(mask, 0, order[i], order[i] + 1).fill_(0.f);
    return mask;
  }
  void update_epoch(int64_t epoch) override { progress_ = static_cast<double>(epoch + 1) / static_cast<double>(epochs_); }

 private:
  int64_t epochs_;
  double progress_ = 0.0;
};

// Filters whose mask is all zero.
static int64_t zero_filters(const Tensor& mask) {
  const std::vector<float> per_filter = sum(mask, {1, 2, 3}).to_vector();
  return std::count(per_filter.begin(), per_filter.end(), 0.f);
}

int main(int argc, char** argv) {
  const int64_t epochs = examples::int_arg(argc, argv, "--epochs", 3);
  const int64_t limit = examples::int_arg(argc, argv, "--limit", -1);
  const std::string dir = examples::fashion_mnist_dir();
  if (dir.empty()) return 77;
  manual_seed(1);
  auto model = models::make_model("lenet5");
  GradualFilterPruner pruner(model, boost::json::parse(R"([{"sparsity": 0.5, "op_types": ["Conv2d"]}])"), epochs);
  pruner.compress();
  optim::SGD optimizer(model->parameters(), 0.05f, 0.9f, 5e-4f);
  data::DataLoader loader(data::load_fashion_mnist(dir, true, limit), 64, true, 1);
  data::DataLoader test(data::load_fashion_mnist(dir, false, 2000), 256, false, 1);

  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    pruner.update_epoch(epoch);  // at the start of each epoch
    model->train();
    loader.start_epoch();
    for (data::Batch b; loader.next(b);) {
      optimizer.zero_grad();
      cross_entropy((*model)(b.inputs), b.labels).backward();
      optimizer.step();
      pruner.step();  // after each minibatch (nothing to do for this pruner)
    }
    model->eval();
    test.start_epoch();
    int64_t correct = 0, seen = 0;
    NoGradGuard ng;
    for (data::Batch b; test.next(b);) {
      const std::vector<int64_t> pred = argmax((*model)(b.inputs), 1).to_vector_i64(), y = b.labels.to_vector_i64();
      for (size_t i = 0; i < y.size(); ++i) correct += pred[i] == y[i];
      seen += static_cast<int64_t>(y.size());
    }
    std::cout << "epoch " << epoch + 1 << ": test accuracy " << std::fixed << std::setprecision(4)
              << static_cast<double>(correct) / static_cast<double>(seen) << ", pruned filters:";
    for (const auto& [key, mask] : pruner.get_masks()) std::cout << " " << key << " " << zero_filters(mask);
    std::cout << "\n";
  }
  // After the last epoch, half of each convolution's filters are gone.
  for (const auto& [key, mask] : pruner.get_masks())
    if (zero_filters(mask) != mask.size(0) / 2) return 1;
  return 0;
}
