// The v1 compressor API (compression/v1/v1_api.h): one test per example of
// ../shared/spec/compressor-v1-overview.md, each against an expectation computed here by hand.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "compression/export/onnx_export.h"
#include "compression/pruning/mask_io.h"
#include "compression/v1/v1_api.h"
#include "framework/core/autograd.h"
#include "framework/core/random.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "models/zoo.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace shrink;
using compression::v1::LayerInfo;

namespace {

// NNI v1's level mask computed independently: |w| above the k-th smallest |w|, k = int(n * s).
std::vector<float> level_mask(const Tensor& w, double sparsity) {
  std::vector<float> a = w.to_vector();
  for (float& v : a) v = std::fabs(v);
  std::vector<float> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  const auto k = static_cast<size_t>(static_cast<double>(a.size()) * sparsity);
  std::vector<float> m(a.size(), 1.f);
  if (k == 0) return m;
  for (size_t i = 0; i < a.size(); ++i) m[i] = a[i] > sorted[k - 1] ? 1.f : 0.f;
  return m;
}

Tensor forward(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  return m(x);
}

double max_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, static_cast<double>(std::fabs(x[i] - y[i])));
  return d;
}

// A fresh copy of `model`'s architecture and weights with each weight in `sparsity` masked by hand.
std::shared_ptr<nn::Module> masked_by_hand(const std::string& name, nn::Module& model,
                                           const std::map<std::string, double>& sparsity) {
  auto copy = models::make_model(name);
  copy->load_state_dict(model.state_dict());
  NoGradGuard ng;
  for (const auto& [layer, s] : sparsity) {
    Tensor w = copy->find(layer)->param("weight");
    w.copy_(mul(w, Tensor::from_vector(level_mask(w, s), w.shape())));
  }
  return copy;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(v1_api)

// "pruner = LevelPruner(model, [{'sparsity': 0.8, 'op_types': ['default']}]); pruner.compress()"
BOOST_AUTO_TEST_CASE(level_pruner_usage_example) {
  manual_seed(1);
  auto model = models::make_model("lenet5");
  compression::v1::LevelPruner pruner(model, json::parse(R"([{"sparsity": 0.8, "op_types": ["default"]}])"));
  const Tensor x = randn({2, 1, 28, 28});
  const Tensor dense = forward(*model, x);
  BOOST_TEST(pruner.compress() == model);
  BOOST_REQUIRE_EQUAL(pruner.selected().size(), 5u);  // 'default': every Conv2d and Linear
  auto expected = masked_by_hand("lenet5", *model, {{"conv1", 0.8}, {"conv2", 0.8}, {"fc1", 0.8}, {"fc2", 0.8}, {"fc3", 0.8}});
  const Tensor got = forward(*model, x);
  BOOST_TEST(max_diff(got, forward(*expected, x)) == 0.0);
  BOOST_TEST(max_diff(got, dense) > 0.0);
  for (const auto& [key, m] : pruner.get_masks()) {
    const int64_t n = m.numel(), zeros = n - static_cast<int64_t>(m.sum().item());
    BOOST_TEST(zeros == static_cast<int64_t>(static_cast<double>(n) * 0.8), key);
  }
  const std::vector<float> stored = model->find("conv1")->param("weight").to_vector();
  BOOST_TEST(std::count(stored.begin(), stored.end(), 0.f) == 0);  // the stored weights stay dense
}

// The configuration example: 0.8 by default, 0.6 for op_name1/op_name2, op_name3 excluded.
BOOST_AUTO_TEST_CASE(configuration_example_later_entries_override_and_exclude) {
  manual_seed(2);
  auto model = models::make_model("lenet5");
  compression::v1::LevelPruner pruner(model, json::parse(R"([
      {"sparsity": 0.8, "op_types": ["default"]},
      {"sparsity": 0.6, "op_names": ["conv1", "fc1"]},
      {"exclude": true, "op_names": ["fc3"]}])"));
  pruner.compress();
  std::map<std::string, double> expected_sparsity = {{"conv1", 0.6}, {"conv2", 0.8}, {"fc1", 0.6}, {"fc2", 0.8}};
  std::vector<std::string> names;
  for (const auto& s : pruner.selected()) {
    names.push_back(s.layer.name);
    BOOST_TEST(s.config.at("sparsity").as_double() == expected_sparsity.at(s.layer.name), s.layer.name);
  }
  BOOST_TEST(names == (std::vector<std::string>{"conv1", "conv2", "fc1", "fc2"}));
  const Tensor x = randn({2, 1, 28, 28});
  BOOST_TEST(max_diff(forward(*model, x), forward(*masked_by_hand("lenet5", *model, expected_sparsity), x)) == 0.0);
}

// "pruner.update_epoch(epoch)" and "pruner.step()": allowed, no effect for LevelPruner.
BOOST_AUTO_TEST_CASE(update_epoch_and_step_may_always_be_called) {
  manual_seed(3);
  auto model = models::make_model("mlp");
  compression::v1::LevelPruner pruner(model, json::parse(R"([{"sparsity": 0.5, "op_types": ["Linear"]}])"));
  pruner.compress();
  const Tensor x = randn({2, 1, 28, 28});
  const Tensor before = forward(*model, x);
  const auto masks = pruner.get_masks();
  for (int64_t e = 0; e < 3; ++e) {
    pruner.update_epoch(e);
    pruner.step();
  }
  BOOST_TEST(max_diff(forward(*model, x), before) == 0.0);
  for (const auto& [k, m] : pruner.get_masks()) BOOST_TEST(m.to_vector() == masks.at(k).to_vector(), k);
}

// "pruner.export_model(model_path='model.pth')" and with mask_path, onnx_path, input_shape.
BOOST_AUTO_TEST_CASE(export_model_example) {
  const fs::path dir = fs::temp_directory_path() / ("shrink_v1_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  manual_seed(4);
  auto model = models::make_model("lenet5");
  compression::v1::LevelPruner pruner(model, json::parse(R"([{"sparsity": 0.8, "op_types": ["default"]}])"));
  pruner.compress();
  const Tensor x = randn({2, 1, 28, 28});
  const Tensor compressed = forward(*model, x);

  pruner.export_model((dir / "model.safetensors").string());
  auto state = io::load_tensors((dir / "model.safetensors").string());
  auto reloaded = models::make_model("lenet5");
  reloaded->load_state_dict(state);
  BOOST_TEST(max_diff(forward(*reloaded, x), compressed) == 0.0);  // the sparse weights, masks applied

  const bool onnx = compression::onnx_export_available();
  pruner.export_model((dir / "model2.safetensors").string(), (dir / "mask.safetensors").string(),
                      onnx ? (dir / "model.onnx").string() : "", {1, 1, 28, 28});
  const compression::Masks masks = compression::load_masks((dir / "mask.safetensors").string());
  BOOST_TEST(masks.size() == 5u);
  BOOST_TEST(masks.at("fc1.weight").to_vector() == pruner.get_masks().at("fc1.weight").to_vector());
  if (onnx) BOOST_TEST(fs::file_size(dir / "model.onnx") > 0u);
  BOOST_TEST(max_diff(forward(*model, x), compressed) == 0.0);  // still compressed, weights as before
  BOOST_CHECK_THROW(pruner.export_model("", "", (dir / "x.onnx").string()), Error);  // no input shape
  // An export that fails midway (an input of the wrong rank) leaves the model as it was.
  BOOST_CHECK_THROW(pruner.export_model("", "", (dir / "y.onnx").string(), {1, 28, 28}), Error);
  BOOST_TEST(max_diff(forward(*model, x), compressed) == 0.0);
  BOOST_TEST(model->find("conv1")->num_forward_pre_hooks() == 1u);
  BOOST_TEST(!fs::exists(dir / "y.onnx"));
  fs::remove_all(dir);
}

// "class YourPruner(Pruner): def calc_mask(self, layer, config): ...", with update_epoch and step.
class HalfChannelPruner : public compression::v1::Pruner {
 public:
  using Pruner::Pruner;
  int64_t epoch = -1, steps = 0;
  std::vector<std::string> asked;
  Tensor calc_mask(const LayerInfo& layer, const json::object& config) override {
    asked.push_back(layer.name + ":" + layer.type + ":" + std::to_string(config.at("sparsity").as_double()));
    const Tensor w = layer.module->param("weight");
    Tensor m = Tensor::ones(w.shape());
    slice(m, 0, 0, w.size(0) / 2).fill_(epoch >= 1 ? 0.f : 1.f);  // prunes from epoch 1 on
    return m;
  }
  void update_epoch(int64_t e) override { epoch = e; }
  void step() override { ++steps; }
};

BOOST_AUTO_TEST_CASE(custom_pruner_example) {
  manual_seed(5);
  auto model = models::make_model("lenet5");
  HalfChannelPruner pruner(model, json::parse(R"([{"sparsity": 0.5, "op_types": ["Conv2d"]}])"));
  pruner.compress();
  BOOST_TEST(pruner.asked == (std::vector<std::string>{"conv1:Conv2d:0.500000", "conv2:Conv2d:0.500000"}));
  const Tensor x = randn({2, 1, 28, 28});
  const Tensor dense = forward(*model, x);
  pruner.update_epoch(0);
  BOOST_TEST(max_diff(forward(*model, x), dense) == 0.0);
  pruner.update_epoch(1);
  pruner.step();
  const Tensor pruned = forward(*model, x);  // calc_mask runs before the forward: the new masks
  auto expected = models::make_model("lenet5");
  expected->load_state_dict(model->state_dict());
  {
    NoGradGuard ng;
    slice(expected->find("conv1")->param("weight"), 0, 0, 3).fill_(0.f);
    slice(expected->find("conv2")->param("weight"), 0, 0, 8).fill_(0.f);
  }
  BOOST_TEST(max_diff(pruned, forward(*expected, x)) == 0.0);
  BOOST_TEST(pruner.steps == 1);
}

// "class YourQuantizer(Quantizer)": quantize_weight / quantize_output / quantize_input.
class StepQuantizer : public compression::v1::Quantizer {
 public:
  using Quantizer::Quantizer;
  std::vector<std::string> calls;
  Tensor quantize_weight(const Tensor& w, const json::object& config, const LayerInfo& layer) override {
    const json::value& bits = config.at("quant_bits");  // one number, or one per quant type
    calls.push_back("weight:" + layer.name + ":" +
                    std::to_string(bits.is_object() ? bits.at("weight").as_int64() : bits.as_int64()));
    return mul(round(mul(w, 16.f)), 1.f / 16.f);  // steps of 1/16
  }
  Tensor quantize_output(const Tensor& y, const json::object&, const LayerInfo& layer) override {
    calls.push_back("output:" + layer.name);
    return clamp(y, -1.f, 1.f);
  }
  std::vector<Tensor> quantize_input(const std::vector<Tensor>& in, const json::object&, const LayerInfo& layer) override {
    calls.push_back("input:" + layer.name);
    return {clamp(in[0], -0.5f, 0.5f)};
  }
};

BOOST_AUTO_TEST_CASE(custom_quantizer_example_with_legacy_quant_keys) {
  manual_seed(6);
  auto model = models::make_model("mlp");
  StepQuantizer q(model, json::parse(R"([
      {"quant_types": ["weight", "output"], "quant_bits": {"weight": 8, "output": 8}, "op_names": ["fc1"]},
      {"quant_types": ["input", "weight"], "quant_bits": 4, "op_names": ["fc3"]}])"));
  q.compress();
  const Tensor x = randn({3, 1, 28, 28});
  Tensor got = forward(*model, x);
  BOOST_TEST(q.calls == (std::vector<std::string>{"weight:fc1:8", "output:fc1", "weight:fc3:4", "input:fc3"}));

  // By hand: fc1 with weights on the 1/16 grid and its output clamped to [-1, 1]; fc3 with its
  // input clamped to [-0.5, 0.5] and weights on the grid.
  auto grid = [](const Tensor& w) { return mul(round(mul(w, 16.f)), 1.f / 16.f); };
  auto* fc1 = dynamic_cast<nn::Linear*>(model->find("fc1").get());
  auto* fc2 = dynamic_cast<nn::Linear*>(model->find("fc2").get());
  auto* fc3 = dynamic_cast<nn::Linear*>(model->find("fc3").get());
  Tensor expected;
  {
    NoGradGuard ng;
    Tensor h = flatten(x, 1);
    h = relu(clamp(linear(h, grid(fc1->param("weight")), fc1->param("bias")), -1.f, 1.f));
    h = relu(linear(h, fc2->param("weight"), fc2->param("bias")));
    expected = linear(clamp(h, -0.5f, 0.5f), grid(fc3->param("weight")), fc3->param("bias"));
  }
  BOOST_TEST(max_diff(got, expected) <= 1e-6);

  // The gradient passes straight through the quantization to the stored weight (NNI's QuantGrad):
  // d sum(out) / d fc3.weight = input rows (clamped), whatever the 1/16 rounding did.
  Tensor out = (*model)(x);
  sum(out).backward();
  Tensor h;
  {
    NoGradGuard ng;
    h = relu(clamp(linear(flatten(x, 1), grid(fc1->param("weight")), fc1->param("bias")), -1.f, 1.f));
    h = clamp(relu(linear(h, fc2->param("weight"), fc2->param("bias"))), -0.5f, 0.5f);
  }
  const Tensor g = fc3->param("weight").grad();
  const Tensor column_sums = sum(h, {0});  // each row of the gradient is the summed input
  for (int64_t o = 0; o < g.size(0); ++o) BOOST_TEST(max_diff(slice(g, 0, o, o + 1).reshape({g.size(1)}), column_sums) <= 1e-4);
}

BOOST_AUTO_TEST_CASE(mistakes_are_named) {
  auto model = models::make_model("lenet5");
  BOOST_CHECK_THROW(compression::v1::LevelPruner(model, json::parse(R"([{"sparsity": 1.5, "op_types": ["default"]}])")),
                    Error);
  class BadShape : public compression::v1::Pruner {
   public:
    using Pruner::Pruner;
    Tensor calc_mask(const LayerInfo&, const json::object&) override { return Tensor::ones({3}); }
  };
  BadShape bad(model, json::parse(R"([{"sparsity": 0.5, "op_names": ["conv1", "conv2"]}])"));
  try {
    bad.compress();
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("calc_mask for 'conv1' returned shape [3]") != std::string::npos, e.what());
  }
  // All or nothing: no hook of the failed compress() stays.
  BOOST_TEST(model->find("conv1")->num_forward_pre_hooks() == 0u);
  BOOST_TEST(model->find("conv2")->num_forward_pre_hooks() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
