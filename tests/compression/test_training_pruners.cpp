// Training-based pruners (Slim, Taylor, Movement), the activation-rank pruners and mask files,
// against nni-semantics §3.2, §3.4, §6.3 and §9.2 items 3 and 6: exact per-layer sparsity with
// dependency groups on NNI's SimpleTorchModel, the Taylor filter case with injected gradients,
// the loss terms and private optimizers, the movement schedule step by step, hand-computed
// activation rankings, and a save/load round trip.
#include <filesystem>

#include <boost/test/unit_test.hpp>

#include "compression/pruning/activation_pruners.h"
#include "compression/pruning/mask_io.h"
#include "compression/pruning/movement_pruner.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/pruning/slim_pruner.h"
#include "compression/pruning/taylor_pruner.h"
#include "compression/simple_model.h"

using namespace shrink;
using namespace shrink::compression;
using namespace shrink::testing;
namespace tt = boost::test_tools;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

// A trainer on `model` with plain SGD and synthetic data of `shape`; `loss` replaces the
// default cross entropy when given.
std::shared_ptr<train::Trainer> small_trainer(std::shared_ptr<nn::Module> model, Shape shape,
                                              int64_t classes, float lr,
                                              train::Trainer::LossFn loss = nullptr) {
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(8, shape, classes, 3));
  auto loader = std::make_shared<data::DataLoader>(ds, 4, false, 0);
  auto opt = std::make_shared<optim::SGD>(model->parameters(), lr);
  return std::make_shared<train::Trainer>(model, opt, loader, nullptr, std::move(loss));
}

// A loss that is zero with zero gradient to the output: only compressor terms remain.
Tensor zero_loss(const Tensor& out, const Tensor&) { return mul(sum(out), 0.f); }

std::string apply_method(Pruner& p, const std::string& key) {
  for (TargetState* t : p.targets())
    if (t->key() == key) return std::string(t->settings(CompressorKind::Pruning).at("apply_method").as_string());
  return "";
}

// f() must throw a shrink::Error whose message contains `needle`.
template <typename F>
void check_error(F&& f, const std::string& needle) {
  try {
    f();
    BOOST_ERROR("no error; expected one containing: " + needle);
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(training_pruners)

// §9.2 item 3: Slim with a few training steps.
BOOST_AUTO_TEST_CASE(slim_simple_model_exact) {
  SimpleSetup s = make_simple_setup();
  SlimPruner pruner(s.model, cfg(kSimpleConfig), *s.trainer, 3);
  BOOST_TEST(apply_method(pruner, "conv1.weight") == "slim_mul");
  BOOST_TEST(apply_method(pruner, "conv1.bias") == "mul");  // aligned, not active: no factor
  Masks m = pruner.compress();
  BOOST_TEST(s.trainer->global_step() == 3);
  check_simple_masks(m, *s.model);
  auto f = pruner.factors();
  BOOST_REQUIRE_EQUAL(f.size(), 4u);
  BOOST_TEST(f.at("conv1.weight_slim_factor").shape() == (Shape{16, 1, 1, 1}));
  BOOST_TEST(f.at("fc1.weight_slim_factor").shape() == (Shape{100, 1}));
  BOOST_TEST(f.at("conv1.weight_slim_factor").to_vector()[0] != 1.f);  // trained
}

// Loss patch and private Adam: base loss 0, one factor [2, 1] of ones, regular_scale 0.5 ->
// loss = 0.5 * ||f||_1 = 1; gradient 0.5 per factor; Adam's first step moves each by lr = 0.01;
// the factor gradients are cleared after the user step.
BOOST_AUTO_TEST_CASE(slim_regulariser_and_private_adam) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("fc", std::make_shared<nn::Linear>(2, 2));
  auto trainer = small_trainer(model, {2}, 2, 0.f, zero_loss);
  SlimPruner pruner(model, cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])"), *trainer, 1, 0.5);
  trainer->train(-1, 1);
  BOOST_TEST(trainer->current_loss().item() == 1.f, tt::tolerance(1e-6f));
  Tensor f = pruner.factors().at("fc.weight_slim_factor");
  for (float v : f.to_vector()) BOOST_TEST(v == 0.99f, tt::tolerance(1e-6f));
  BOOST_TEST(!f.grad().defined());
  BOOST_TEST(sparsity(pruner.get_masks().at("fc.weight")) == 0.5);
}

// §9.2 item 6 through the real after-backward accumulation: the loss sum(w1 * G1) +
// sum(w2 * G2) gives exactly the gradients G (lr 0 keeps the weights). conv1 filter i is
// constant i with gradient -1, 1, -1, 1, -1; conv2 filter i is 10 - i with gradient (-1)^i.
BOOST_AUTO_TEST_CASE(taylor_exact_injected_gradients) {
  auto model = std::make_shared<nn::Sequential>();
  auto c1 = std::make_shared<nn::Conv2d>(1, 5, 5);
  auto c2 = std::make_shared<nn::Conv2d>(5, 10, 5);
  model->push_back("conv1", c1);
  model->push_back("conv2", c2);
  std::vector<float> g1(125), g2(1250);
  float* w1 = c1->parameter("weight").data<float>();
  float* w2 = c2->parameter("weight").data<float>();
  for (int i = 0; i < 125; ++i) {
    w1[i] = static_cast<float>(i / 25);
    g1[i] = (i / 25) % 2 == 0 ? -1.f : 1.f;
  }
  for (int i = 0; i < 1250; ++i) {
    w2[i] = static_cast<float>(10 - i / 125);
    g2[i] = (i / 125) % 2 == 0 ? 1.f : -1.f;
  }
  Tensor G1 = Tensor::from_vector(g1, {5, 1, 5, 5}), G2 = Tensor::from_vector(g2, {10, 5, 5, 5});
  auto trainer = small_trainer(model, {1, 9, 9}, 2, 0.f, [c1, c2, G1, G2](const Tensor&, const Tensor&) {
    return add(sum(mul(c1->parameter("weight"), G1)), sum(mul(c2->parameter("weight"), G2)));
  });
  TaylorPruner pruner(model, cfg(R"([{"op_names": ["conv1"], "sparse_ratio": 0.2},
                                     {"op_names": ["conv2"], "sparse_ratio": 0.6}])"), *trainer, 1);
  Masks m = pruner.compress();
  BOOST_TEST(filter_sums(m.at("conv1.weight")) == (std::vector<float>{0, 25, 25, 25, 25}));
  BOOST_TEST(filter_sums(m.at("conv2.weight")) ==
             (std::vector<float>{125, 125, 125, 125, 0, 0, 0, 0, 0, 0}));
}

// §9.2 item 3: Taylor.
BOOST_AUTO_TEST_CASE(taylor_simple_model_exact) {
  SimpleSetup s = make_simple_setup();
  TaylorPruner pruner(s.model, cfg(kSimpleConfig), *s.trainer, 2);
  Masks m = pruner.compress();
  BOOST_TEST(s.trainer->global_step() == 2);
  check_simple_masks(m, *s.model);
}

// §9.2 item 3: Movement (warmup 2, cooldown 5, compress(6)).
BOOST_AUTO_TEST_CASE(movement_simple_model_exact) {
  SimpleSetup s = make_simple_setup();
  MovementPruner pruner(s.model, cfg(kSimpleConfig), *s.trainer, 2, 5);
  BOOST_TEST(apply_method(pruner, "fc1.weight") == "movement_mul");
  check_error([&] { pruner.compress(4); }, "stops before cooldown_begin_step 5");
  Masks m = pruner.compress(6);
  BOOST_TEST(pruner.fraction() == 1.0);
  check_simple_masks(m, *s.model);
  bool moved = false;
  for (float v : pruner.scores().at("conv1.weight_mvp_score").to_vector()) moved = moved || v != 0.f;
  BOOST_TEST(moved);
}

BOOST_AUTO_TEST_CASE(movement_schedule_fraction) {
  BOOST_TEST(MovementPruner::schedule_fraction(10, 10, 90) == 0.0);
  BOOST_TEST(MovementPruner::schedule_fraction(50, 10, 90) == 0.875);
  BOOST_TEST(MovementPruner::schedule_fraction(90, 10, 90) == 1.0);
  BOOST_TEST(MovementPruner::schedule_fraction(120, 10, 90) == 1.0);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("fc", std::make_shared<nn::Linear>(2, 2));
  auto trainer = small_trainer(model, {2}, 2, 0.f);
  const auto c = cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])");
  check_error([&] { MovementPruner(model, c, *trainer, 5, 5); }, "warmup_step < cooldown_begin_step");
  check_error([&] { MovementPruner(model, c, *trainer, -1, 5); }, "warmup_step < cooldown_begin_step");
}

// Masks follow the cubic schedule step by step: 16 rows, goal 0.5, warmup 1, cooldown 5:
// fraction after step s = 1 - (1 - (s-1)/4)^3 -> pruned rows floor(8 * fraction).
BOOST_AUTO_TEST_CASE(movement_masks_every_step) {
  manual_seed(3);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("fc", std::make_shared<nn::Linear>(4, 16));
  auto trainer = small_trainer(model, {4}, 16, 0.1f);
  MovementPruner pruner(model, cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])"), *trainer, 1, 5);
  std::vector<double> seen;
  trainer->on_after_step([&](train::Trainer&) { seen.push_back(sparsity(pruner.get_masks().at("fc.weight"))); });
  trainer->train(-1, 6);
  BOOST_TEST(seen == (std::vector<double>{0, 4.0 / 16, 7.0 / 16, 7.0 / 16, 0.5, 0.5}), tt::per_element());
}

// Threshold targets: loss += regular_scale * fraction * mean sigmoid(score). Scores stay 0
// under a zero base loss until the term starts (after warmup): at step 3 the fraction of the
// previous step is 0.875 and sigmoid(0) = 0.5, so the loss is 2 * 0.875 * 0.5.
BOOST_AUTO_TEST_CASE(movement_threshold_regulariser) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("fc", std::make_shared<nn::Linear>(4, 8));
  auto trainer = small_trainer(model, {4}, 8, 0.f, zero_loss);
  MovementPruner pruner(model, cfg(R"([{"op_names": ["fc"], "sparse_threshold": 0.5}])"), *trainer, 1, 3, 2.0);
  std::vector<float> losses;
  trainer->on_after_step([&](train::Trainer& t) { losses.push_back(t.current_loss().item()); });
  trainer->train(-1, 3);
  BOOST_TEST(losses == (std::vector<float>{0.f, 0.f, 0.875f}), tt::tolerance(1e-6f) << tt::per_element());
}

BOOST_AUTO_TEST_CASE(training_pruner_errors) {
  SimpleSetup s = make_simple_setup();
  auto other = std::make_shared<SimpleModel>();
  // The trainer must train the pruned model.
  check_error([&] { SlimPruner(other, cfg(kSimpleConfig), *s.trainer, 1); }, "different model");
  // Activation targets have no weight for these metrics.
  check_error([&] {
    TaylorPruner(s.model, cfg(R"([{"op_names": ["fc2"], "target_names": ["_output_"],
        "target_settings": {"_output_": {"sparse_ratio": 0.5}}}])"), *s.trainer, 1);
  }, "fc2._output_0 is an activation target");
}

// Hand-built activation case: conv 1x1, weights [0, 1, 1, 0], biases [-1, 0, 1.5, 0.5], input
// [-2, -1, 1, 2]. relu outputs per channel: [0 0 0 0], [0 0 1 2], [0 .5 2.5 3.5], [.5 .5 .5 .5].
// APoZ = 1, .5, .25, 0 -> metric 1 - APoZ = 0, .5, .75, 1: ratio 0.5 prunes channels 0, 1.
// Means = 0, .75, 1.625, .5: ratio 0.5 prunes channels 0, 3.
BOOST_AUTO_TEST_CASE(activation_rank_hand_built) {
  auto model = std::make_shared<nn::Sequential>();
  auto conv = std::make_shared<nn::Conv2d>(1, 4, 1);
  model->push_back("conv", conv);
  conv->parameter("weight").copy_(Tensor::from_vector({0, 1, 1, 0}, {4, 1, 1, 1}));
  conv->parameter("bias").copy_(Tensor::from_vector({-1, 0, 1.5f, 0.5f}, {4}));
  std::vector<float> x = {-2, -1, 1, 2, -2, -1, 1, 2};
  auto ds = std::make_shared<data::TensorDataset>(Tensor::from_vector(x, {2, 1, 2, 2}),
                                                  Tensor::from_vector_i64({0, 1}, {2}));
  auto loader = std::make_shared<data::DataLoader>(ds, 1, false, 0);
  const auto c = cfg(R"([{"op_names": ["conv"], "sparse_ratio": 0.5}])");
  {
    ActivationAPoZRankPruner apoz(model, c, loader, 3);  // 3 batches: wraps into a second epoch
    Masks m = apoz.compress();
    BOOST_TEST(m.at("conv.weight").to_vector() == (std::vector<float>{0, 0, 1, 1}));
    BOOST_TEST(m.at("conv.bias").to_vector() == (std::vector<float>{0, 0, 1, 1}));
    BOOST_TEST(model->is_training());  // mode restored
  }
  {
    ActivationMeanRankPruner mean(model, c, loader, 2);
    BOOST_TEST(mean.compress().at("conv.weight").to_vector() == (std::vector<float>{0, 1, 1, 0}));
  }
  check_error([&] { ActivationMeanRankPruner(model, c, loader, 2, "tanh"); }, "unknown activation 'tanh'");
  // Blocks that are not the output channels cannot take a channel ranking.
  ActivationMeanRankPruner in(model, cfg(R"([{"op_names": ["conv"], "sparse_ratio": 0.5,
                                             "granularity": "in_channel"}])"), loader, 1);
  check_error([&] { in.compress(); }, "has 4 output channels");
}

BOOST_AUTO_TEST_CASE(mask_file_round_trip) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "shrink_test_masks.safetensors").string();
  SimpleSetup s = make_simple_setup();
  L1NormPruner pruner(s.model, cfg(kSimpleConfig));
  Masks m = pruner.compress();
  save_masks(path, m);
  Masks back = load_masks(path);
  BOOST_REQUIRE_EQUAL(back.size(), m.size());
  for (const auto& [k, v] : m) {
    BOOST_REQUIRE(back.count(k));
    BOOST_TEST(back.at(k).shape() == v.shape(), k);
    BOOST_TEST(back.at(k).to_vector() == v.to_vector(), k);
  }
  BOOST_TEST(back.at("conv2.weight").shape() == (Shape{32, 4, 3, 3}));  // full target shape
  // Loaded masks apply to a fresh pruner as they are.
  pruner.update_masks(back);
  check_error([&] { save_masks(path, {{"fc.weight", Tensor::full({2}, 0.5f)}}); }, "holds 0.5");
  check_error([&] { save_masks(path, {{"weight", Tensor::ones({2})}}); }, "is not '<module>.<target>'");
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
