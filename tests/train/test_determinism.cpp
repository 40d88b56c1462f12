// Same seed and thread count give bitwise-identical weights after training; the Trainer runs
// its callbacks in the documented order.
#include <boost/test/unit_test.hpp>

#include "framework/data/dataloader.h"
#include "framework/data/dataset.h"
#include "framework/shrink.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

namespace {
std::map<std::string, std::vector<float>> train_once(const std::string& model_name, uint64_t seed) {
  manual_seed(seed);
  auto model = models::make_model(model_name);
  auto ds = std::make_shared<data::TensorDataset>(
      data::make_synthetic_classification(96, {1, 28, 28}, 10, 5));
  auto loader = std::make_shared<data::DataLoader>(ds, 32, true, seed);
  auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.05f, 0.9f, 5e-4f);
  train::Trainer t(model, opt, loader);
  t.train(2);
  std::map<std::string, std::vector<float>> out;
  for (auto& [n, p] : model->state_dict()) out[n] = p.to_vector();
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(determinism)

BOOST_AUTO_TEST_CASE(same_seed_bitwise_identical) {
  for (const std::string name : {"lenet5", "vgg_small", "tiny_transformer"}) {
    auto a = train_once(name, 3);
    auto b = train_once(name, 3);
    BOOST_TEST(a.size() == b.size());
    for (auto& [k, v] : a) BOOST_TEST(v == b.at(k), name << " " << k);
    auto c = train_once(name, 4);
    BOOST_TEST(c.at(a.begin()->first) != a.begin()->second, name << ": another seed differs");
  }
}

BOOST_AUTO_TEST_CASE(trainer_learns_and_calls_back_in_order) {
  manual_seed(1);
  auto model = models::make_model("mlp");
  auto ds = std::make_shared<data::TensorDataset>(
      data::make_synthetic_classification(256, {1, 28, 28}, 10, 2));
  auto loader = std::make_shared<data::DataLoader>(ds, 32, true, 1);
  auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.05f, 0.9f);
  train::Trainer t(model, opt, loader, loader);
  std::vector<std::string> events;
  t.on_after_backward([&](train::Trainer& tr) {
    events.push_back("backward");
    BOOST_TEST(tr.model().find("fc1")->param("weight").grad().defined());
  });
  t.on_before_step([&](train::Trainer&) { events.push_back("before"); });
  t.on_after_step([&](train::Trainer&) { events.push_back("after"); });
  t.on_epoch_end([&](train::Trainer&, const train::EpochStats&) { events.push_back("epoch"); });
  int patched = 0;
  t.patch_loss([&](const Tensor& loss, const data::Batch&) {
    ++patched;
    return loss;
  });
  double before = t.evaluate().accuracy;
  auto hist = t.train(3);
  BOOST_TEST(hist.size() == 3u);
  BOOST_TEST(t.global_step() == 24);
  BOOST_TEST(patched == 24);
  BOOST_TEST(events.at(0) == "backward");
  BOOST_TEST(events.at(1) == "before");
  BOOST_TEST(events.at(2) == "after");
  BOOST_TEST(events.at(8 * 3) == "epoch");
  BOOST_TEST(hist.back().test_accuracy > 0.9);
  BOOST_TEST(hist.back().test_accuracy > before);
  // max_steps stops mid-epoch.
  auto h2 = t.train(-1, 5);
  BOOST_TEST(t.global_step() == 29);
  BOOST_TEST(h2.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
