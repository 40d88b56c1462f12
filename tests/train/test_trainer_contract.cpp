// The Trainer as NNI's evaluator (nni-semantics §6.1): loss patches, step tasks and the model hooks
// with a buffer each (test anchor: NNI's utils/test_evaluator.py — after one step every flag is
// set and each hook buffer holds one entry), removable registrations, and extra parameters that
// join the optimizer group of their module.
#include <boost/test/unit_test.hpp>

#include "framework/data/dataloader.h"
#include "framework/data/dataset.h"
#include "framework/shrink.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

namespace {
struct Setup {
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<optim::SGD> opt;
  std::unique_ptr<train::Trainer> trainer;
  explicit Setup(float lr = 0.01f) {
    manual_seed(5);
    model = models::make_model("lenet5");
    auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(64, {1, 28, 28}, 10, 3));
    auto loader = std::make_shared<data::DataLoader>(ds, 16, false, 1);
    opt = std::make_shared<optim::SGD>(model->parameters(), lr);
    trainer = std::make_unique<train::Trainer>(model, opt, loader);
  }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(trainer_contract)

BOOST_AUTO_TEST_CASE(hooks_fill_their_buffers_once_per_step) {
  Setup s;
  train::Trainer& t = *s.trainer;
  bool loss_patched = false, before = false, after = false;
  t.patch_loss([&](const Tensor& loss, const data::Batch&) {
    loss_patched = true;
    return loss;
  });
  t.on_before_step([&](train::Trainer&) { before = true; });
  t.on_after_step([&](train::Trainer&) { after = true; });
  auto tensor_hook = t.add_tensor_hook("conv1.weight", [](const Tensor& g, train::Trainer::HookBuffer& b) {
    b.push_back(g.contiguous_copy());
    return Tensor();
  });
  auto forward_hook = t.add_forward_hook(
      "conv1", [](nn::Module&, const std::vector<nn::Value>&, const nn::Value& out, train::Trainer::HookBuffer& b) {
        b.push_back(out.tensor().detach());
      });
  auto backward_hook = t.add_backward_hook("conv1", [](nn::Module& m, const Tensor& g, train::Trainer::HookBuffer& b) {
    BOOST_TEST(m.type_name() == "Conv2d");
    b.push_back(g.contiguous_copy());
  });
  t.train(-1, 1);
  BOOST_TEST(loss_patched);
  BOOST_TEST(before);
  BOOST_TEST(after);
  BOOST_TEST(t.hook_buffer(tensor_hook).size() == 1u);
  BOOST_TEST(t.hook_buffer(forward_hook).size() == 1u);
  BOOST_TEST(t.hook_buffer(backward_hook).size() == 1u);
  // The tensor hook saw the gradient the parameter then received; the forward and backward hooks
  // saw the output [16, 6, 28, 28] and its gradient.
  const Tensor& g = t.hook_buffer(tensor_hook)[0];
  BOOST_TEST(g.shape() == s.model->find("conv1")->param("weight").shape());
  BOOST_TEST(g.to_vector() == s.model->find("conv1")->param("weight").grad().to_vector());
  BOOST_TEST(t.hook_buffer(forward_hook)[0].shape() == (Shape{16, 6, 28, 28}));
  BOOST_TEST(t.hook_buffer(backward_hook)[0].shape() == (Shape{16, 6, 28, 28}));
  // Buffers keep filling across train() calls until the hook is removed.
  t.train(-1, 3);
  BOOST_TEST(t.hook_buffer(tensor_hook).size() == 4u);
  BOOST_TEST(t.hook_buffer(backward_hook).size() == 4u);
  t.remove_callback(forward_hook);
  BOOST_CHECK_THROW(t.hook_buffer(forward_hook), Error);
  t.train(-1, 1);
  BOOST_TEST(t.hook_buffer(tensor_hook).size() == 5u);
}

BOOST_AUTO_TEST_CASE(a_tensor_hook_can_replace_the_gradient) {
  // Zeroing conv1's gradient through its hook leaves conv1 as it was while the rest trains.
  Setup s(0.1f);
  train::Trainer& t = *s.trainer;
  const auto w0 = s.model->find("conv1")->param("weight").to_vector();
  const auto f0 = s.model->find("fc3")->param("weight").to_vector();
  t.add_tensor_hook("conv1.weight", [](const Tensor& g, train::Trainer::HookBuffer&) { return Tensor::zeros(g.shape()); });
  t.train(-1, 2);
  BOOST_TEST(s.model->find("conv1")->param("weight").to_vector() == w0);
  BOOST_TEST(s.model->find("fc3")->param("weight").to_vector() != f0);
  BOOST_CHECK_THROW(t.add_tensor_hook("conv1.nothing", nullptr), Error);
  BOOST_CHECK_THROW(t.add_forward_hook("nothing", nullptr), Error);
}

BOOST_AUTO_TEST_CASE(removed_callbacks_no_longer_run) {
  Setup s;
  train::Trainer& t = *s.trainer;
  std::vector<std::string> order;
  auto a = t.on_after_step([&](train::Trainer&) { order.push_back("a"); });
  t.on_after_step([&](train::Trainer&) { order.push_back("b"); });
  auto p = t.patch_loss([&](const Tensor& loss, const data::Batch&) { return mul(loss, 0.f); });
  t.remove_callback(p);
  t.train(-1, 1);
  BOOST_TEST(order == (std::vector<std::string>{"a", "b"}));
  BOOST_TEST(t.current_loss().item() > 0.f);  // the zeroing patch is gone
  t.remove_callback(a);
  t.on_after_step([&](train::Trainer&) { order.push_back("a"); });  // re-registered: now last
  t.train(-1, 1);
  BOOST_TEST(order == (std::vector<std::string>{"a", "b", "b", "a"}));
  t.remove_callback(12345);  // unknown: nothing happens
}

BOOST_AUTO_TEST_CASE(extra_parameters_join_their_modules_group) {
  manual_seed(2);
  auto model = models::make_model("lenet5");
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(16, {1, 28, 28}, 10, 3));
  auto loader = std::make_shared<data::DataLoader>(ds, 16, false, 1);
  // Two groups: fc3 alone with its own learning rate, everything else in group 0.
  std::vector<Tensor> rest, head;
  for (auto& [name, p] : model->named_parameters()) (name.rfind("fc3.", 0) == 0 ? head : rest).push_back(p);
  auto opt = std::make_shared<optim::SGD>(rest, 0.01f);
  optim::GroupOptions o = opt->defaults();
  o.lr = 0.5f;
  opt->add_param_group(head, o);
  train::Trainer t(model, opt, loader);
  Tensor extra = Tensor::ones({3}).set_requires_grad(true);
  t.add_to_param_group("fc3", {extra});
  BOOST_TEST(opt->param_groups()[1].params.back().impl() == extra.impl());
  Tensor other = Tensor::ones({2}).set_requires_grad(true);
  t.add_to_param_group("no_such_module", {other});  // NNI: group 0
  BOOST_TEST(opt->param_groups()[0].params.back().impl() == other.impl());
  // It trains with its group's learning rate: d(sum(extra))/d(extra) = 1, so one step moves it by 0.5.
  t.patch_loss([&](const Tensor& loss, const data::Batch&) { return add(loss, sum(extra)); });
  t.train(-1, 1);
  for (float v : extra.to_vector()) BOOST_TEST(v == 0.5f);
  BOOST_CHECK_THROW(t.add_to_param_group("fc3", {mul(extra, 2.f)}), Error);  // not a leaf
}

BOOST_AUTO_TEST_SUITE_END()
