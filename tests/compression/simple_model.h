// Shared fixtures of the pruning tests: NNI's SimpleTorchModel
// (test/algo/compression/assets/simple_mnist), the dependency-group config of nni-semantics
// §9.2 item 3 (as auto_set_denpendency_group_ids gives it), and mask inspection helpers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "compression/pruning/pruner.h"
#include "framework/data/dataloader.h"
#include "framework/optim/optimizer.h"
#include "framework/shrink.h"
#include "framework/train/trainer.h"

namespace shrink::testing {

class SimpleModel : public nn::Module {
 public:
  SimpleModel() {
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 16, 3));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(16));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(16, 32, 3, 1, 0, 1, 4));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(32));
    conv3 = register_module("conv3", std::make_shared<nn::Conv2d>(16, 32, 3));
    bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(32));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(32 * 24 * 24, 100));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(100, 10));
  }
  std::string type_name() const override { return "SimpleTorchModel"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<nn::Linear> fc1, fc2;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    Tensor x = (*bn1)((*conv1)(input_tensor(in, 0)));
    x = add((*bn2)((*conv2)(x)), (*bn3)((*conv3)(x)));
    return log_softmax((*fc2)((*fc1)(flatten(x, 1))), 1);
  }
};

// conv -> bn -> relu -> depthwise conv (8 groups) -> relu -> pointwise conv: the depthwise case of
// the dependency and speedup tests.
class DepthwiseModel : public nn::Module {
 public:
  DepthwiseModel() {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 8, 3, 1, 1));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(8));
    dw = register_module("dw", std::make_shared<nn::Conv2d>(8, 8, 3, 1, 1, 1, 8));
    pw = register_module("pw", std::make_shared<nn::Conv2d>(8, 16, 1));
  }
  std::string type_name() const override { return "Depthwise"; }
  std::shared_ptr<nn::Conv2d> conv, dw, pw;
  std::shared_ptr<nn::BatchNorm2d> bn;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    return (*pw)(relu((*dw)(relu((*bn)((*conv)(input_tensor(in, 0)))))));
  }
};

// fc1, conv1 (group conv2's 4 groups: internal_metric_block 4) and {conv2, conv3} (added
// outputs) each in a dependency group, sparse_ratio 0.75, out_channel.
inline const char* kSimpleConfig = R"([
  {"op_names": ["fc1"], "sparse_ratio": 0.75, "granularity": "out_channel", "dependency_group_id": "fc1"},
  {"op_names": ["conv1"], "sparse_ratio": 0.75, "granularity": "out_channel",
   "dependency_group_id": "conv1", "internal_metric_block": 4},
  {"op_names": ["conv2", "conv3"], "sparse_ratio": 0.75, "granularity": "out_channel",
   "dependency_group_id": "conv23", "internal_metric_block": 4}])";

inline double sparsity(const Tensor& m) {
  double s = 0;
  for (float v : m.to_vector()) s += v == 0.f;
  return s / static_cast<double>(m.numel());
}

// Kept flag per output channel of a [O, ...] mask (checking the whole row is uniform).
inline std::vector<int> kept_rows(const Tensor& m) {
  const int64_t rows = m.size(0), per = m.numel() / rows;
  std::vector<float> v = m.to_vector();
  std::vector<int> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    float first = v[r * per];
    for (int64_t j = 0; j < per; ++j) BOOST_REQUIRE_EQUAL(v[r * per + j], first);
    out[r] = first != 0.f;
  }
  return out;
}

inline std::vector<float> filter_sums(const Tensor& m) {
  const int64_t rows = m.size(0), per = m.numel() / rows;
  std::vector<float> v = m.to_vector(), out(rows, 0.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < per; ++j) out[r] += v[r * per + j];
  return out;
}

// §9.2 item 3 on the masks of kSimpleConfig: exactly 0.75 per configured weight, biases aligned
// to their weight's rows, conv2/conv3 keeping the same channels, 1 of every 4 channels of conv1
// and 2 of every 8 of conv2/conv3 kept, fc2 untouched; the masked model still runs.
inline void check_simple_masks(compression::Masks& m, nn::Module& model) {
  for (const char* name : {"fc1", "conv1", "conv2", "conv3"}) {
    const Tensor& w = m.at(std::string(name) + ".weight");
    BOOST_TEST(sparsity(w) == 0.75, name);
    std::vector<int> rows = kept_rows(w);
    std::vector<float> b = m.at(std::string(name) + ".bias").to_vector();
    for (size_t r = 0; r < rows.size(); ++r) BOOST_TEST(b[r] == static_cast<float>(rows[r]));
  }
  BOOST_TEST(m.count("fc2.weight") == 0u);
  BOOST_TEST(kept_rows(m.at("conv2.weight")) == kept_rows(m.at("conv3.weight")));
  std::vector<int> k1 = kept_rows(m.at("conv1.weight")), k2 = kept_rows(m.at("conv2.weight"));
  for (int b = 0; b < 4; ++b) {
    BOOST_TEST(k1[4 * b] + k1[4 * b + 1] + k1[4 * b + 2] + k1[4 * b + 3] == 1);
    int s = 0;
    for (int j = 0; j < 8; ++j) s += k2[8 * b + j];
    BOOST_TEST(s == 2);
  }
  Tensor y = model(Tensor::ones({2, 1, 28, 28}));
  BOOST_TEST(y.shape() == (Shape{2, 10}));
}

// A SimpleModel (seeded) with a Trainer on synthetic 1x28x28 data in 10 classes, batches of 8,
// SGD(lr 0.01, momentum 0.9, weight decay 5e-4) as NNI's test loop.
struct SimpleSetup {
  std::shared_ptr<SimpleModel> model;
  std::shared_ptr<train::Trainer> trainer;
};

inline SimpleSetup make_simple_setup(uint64_t seed = 7) {
  manual_seed(seed);
  SimpleSetup s;
  s.model = std::make_shared<SimpleModel>();
  auto ds = std::make_shared<data::TensorDataset>(
      data::make_synthetic_classification(64, {1, 28, 28}, 10, seed));
  auto loader = std::make_shared<data::DataLoader>(ds, 8, true, seed);
  auto opt = std::make_shared<optim::SGD>(s.model->parameters(), 0.01f, 0.9f, 5e-4f);
  s.trainer = std::make_shared<train::Trainer>(s.model, opt, loader);
  return s;
}

}  // namespace shrink::testing
