// nn::Module: names, registration errors, hooks (order, prepend, replacement, removal while
// running), parameter redirects and gradient flow, state dicts.
#include <boost/test/unit_test.hpp>

#include "framework/shrink.h"
#include "gradcheck.h"
#include "models/zoo.h"

using namespace shrink;
using namespace shrink::nn;
using shrink::testing::check_close;

namespace {
// A module whose forward has named arguments x, y, z and returns a dict.
class ThreeArgs : public Module {
 public:
  std::string type_name() const override { return "ThreeArgs"; }
  std::vector<std::string> arg_names() const override { return {"x", "y", "z"}; }

 protected:
  Value forward(const std::vector<Value>& in) override {
    const Tensor &x = input_tensor(in, 0), &y = input_tensor(in, 1), &z = input_tensor(in, 2);
    return Value::dict({{"sum", add(add(x, y), z)}, {"prod", mul(x, y)}});
  }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(module)

BOOST_AUTO_TEST_CASE(named_modules_dotted_with_root) {
  auto m = models::make_model("resnet20");
  auto mods = m->named_modules();
  BOOST_TEST(mods.front().first == "");
  BOOST_TEST(mods.front().second->type_name() == "ResNet20");
  std::map<std::string, std::string> types;
  for (auto& [n, mod] : mods) types[n] = mod->type_name();
  BOOST_TEST(types["layer1.0.conv1"] == "Conv2d");
  BOOST_TEST(types["layer2.0.downsample.0"] == "Conv2d");
  BOOST_TEST(types["layer2.0.downsample.1"] == "BatchNorm2d");
  BOOST_TEST(types["fc"] == "Linear");
  BOOST_TEST(types.count("layer1.0.downsample") == 0);
  auto params = m->named_parameters();
  BOOST_TEST(params.front().first == "conv1.weight");
  BOOST_TEST(m->find("layer3.2.bn2")->type_name() == "BatchNorm2d");
  BOOST_TEST(m->find("layer9") == nullptr);
}

BOOST_AUTO_TEST_CASE(zoo_names_and_shapes) {
  auto vgg = models::make_model("vgg_small");
  BOOST_TEST(vgg->find("features.conv6")->type_name() == "Conv2d");
  BOOST_TEST(vgg->find("features.bn1")->type_name() == "BatchNorm2d");
  BOOST_TEST(vgg->find("features.pool3")->type_name() == "MaxPool2d");
  BOOST_TEST(vgg->find("classifier.fc1")->param("weight").shape() == (Shape{256, 1152}));
  BOOST_TEST(!vgg->find("features.conv1")->param("bias").defined());
  auto tt = models::make_model("tiny_transformer");
  BOOST_TEST(tt->find("layers.1.attn")->type_name() == "MultiheadAttention");
  BOOST_TEST(tt->find("layers.0.attn.q_proj")->type_name() == "Linear");
  BOOST_TEST(tt->find("layers.0.ffn.fc1")->param("weight").shape() == (Shape{128, 64}));
  BOOST_TEST(tt->find("embed")->param("weight").shape() == (Shape{64, 16}));
  for (const auto& name : models::model_names()) {
    auto m = models::make_model(name);
    m->eval();
    Tensor y = (*m)(Tensor::zeros({2, 1, 28, 28}));
    BOOST_TEST(y.shape() == (Shape{2, 10}), name);
  }
  BOOST_CHECK_THROW(models::make_model("alexnet"), Error);
}

BOOST_AUTO_TEST_CASE(registration_errors) {
  Linear l(2, 3);
  BOOST_CHECK_THROW(l.register_parameter("weight", Tensor::zeros({1})), Error);
  BOOST_CHECK_THROW(l.register_buffer("a.b", Tensor::zeros({1})), Error);
  BOOST_CHECK_THROW(l.register_buffer("", Tensor::zeros({1})), Error);
  BOOST_CHECK_THROW(l.param("nope"), Error);
}

BOOST_AUTO_TEST_CASE(hooks_run_in_order_with_prepend) {
  Identity m;
  std::vector<int> order;
  auto h1 = m.register_forward_pre_hook([&](Module&, const std::vector<Value>&) {
    order.push_back(1);
    return std::nullopt;
  });
  auto h2 = m.register_forward_pre_hook([&](Module&, const std::vector<Value>&) {
    order.push_back(2);
    return std::nullopt;
  }, /*prepend=*/true);
  auto h3 = m.register_forward_hook([&](Module&, const std::vector<Value>&, const Value&) {
    order.push_back(3);
    return std::nullopt;
  });
  auto h4 = m.register_forward_hook([&](Module&, const std::vector<Value>&, const Value&) {
    order.push_back(4);
    return std::nullopt;
  }, true);
  m(Tensor::zeros({1}));
  BOOST_TEST(order == (std::vector<int>{2, 1, 4, 3}));
  h1.remove();
  h4.remove();
  h4.remove();  // twice is harmless
  order.clear();
  m(Tensor::zeros({1}));
  BOOST_TEST(order == (std::vector<int>{2, 3}));
}

BOOST_AUTO_TEST_CASE(hooks_replace_inputs_and_outputs) {
  Linear l(2, 1);
  l.parameter("weight").detach().copy_(Tensor::from_vector({1, 1}, {1, 2}));
  l.parameter("bias").detach().copy_(Tensor::from_vector({0}, {1}));
  l.register_forward_pre_hook([](Module&, const std::vector<Value>& in) -> std::optional<std::vector<Value>> {
    return std::vector<Value>{mul(in[0].tensor(), 2.f)};
  });
  l.register_forward_hook([](Module&, const std::vector<Value>&, const Value& out) -> std::optional<Value> {
    return Value(add(out.tensor(), 100.f));
  });
  Tensor y = l(Tensor::from_vector({1, 2}, {1, 2}));
  check_close(y.to_vector(), {106}, 0, "replaced");
}

BOOST_AUTO_TEST_CASE(hook_removal_during_iteration) {
  Identity m;
  std::vector<int> ran;
  HookHandle h2;
  HookHandle h1 = m.register_forward_hook([&](Module&, const std::vector<Value>&, const Value&) {
    ran.push_back(1);
    h1.remove();  // removes itself
    h2.remove();  // and a later hook, which then must not run
    return std::nullopt;
  });
  h2 = m.register_forward_hook([&](Module&, const std::vector<Value>&, const Value&) {
    ran.push_back(2);
    return std::nullopt;
  });
  m.register_forward_hook([&](Module&, const std::vector<Value>&, const Value&) {
    ran.push_back(3);
    return std::nullopt;
  });
  m(Tensor::zeros({1}));
  m(Tensor::zeros({1}));
  BOOST_TEST(ran == (std::vector<int>{1, 3, 3}));
  BOOST_TEST(m.num_forward_hooks() == 1u);
}

BOOST_AUTO_TEST_CASE(redirected_parameter_gets_gradient_at_original) {
  Linear l(3, 2);
  Tensor mask = Tensor::from_vector({1, 0, 1, 0, 1, 1}, {2, 3});
  l.register_forward_pre_hook([mask](Module& m, const std::vector<Value>&) {
    m.redirect("weight", mul(m.parameter("weight"), mask));
    return std::nullopt;
  });
  Tensor x = Tensor::from_vector({1, 2, 3}, {1, 3});
  Tensor w = l.parameter("weight").detach().contiguous_copy();
  Tensor y = l(x);
  // Forward used weight * mask.
  std::vector<float> wv = w.to_vector(), bv = l.parameter("bias").to_vector();
  float y0 = wv[0] * 1 + wv[2] * 3 + bv[0];
  float y1 = wv[4] * 2 + wv[5] * 3 + bv[1];
  check_close(y.to_vector(), {y0, y1}, 1e-6, "masked forward");
  BOOST_TEST(!l.redirected("weight"));  // only for that call
  BOOST_TEST(l.parameter("weight").is_leaf());
  sum(y).backward();
  // d/dW of sum(x W_masked^T) = mask * x.
  check_close(l.parameter("weight").grad().to_vector(), {1, 0, 3, 0, 2, 3}, 0, "grad via mask");
  BOOST_CHECK_THROW(l.redirect("nope", Tensor()), Error);
}

BOOST_AUTO_TEST_CASE(named_arguments_and_dict_outputs) {
  ThreeArgs m;
  BOOST_TEST(m.arg_names() == (std::vector<std::string>{"x", "y", "z"}));
  Value out = m(std::vector<Value>{Tensor::ones({1}), Tensor::full({1}, 2.f), Tensor::full({1}, 3.f)});
  BOOST_TEST(out.is_dict());
  BOOST_TEST(out.at("sum").tensor().item() == 6.f);
  BOOST_TEST(out.at("prod").tensor().item() == 2.f);
  BOOST_CHECK_THROW(out.at("nope"), Error);
  BOOST_CHECK_THROW(m(Tensor::ones({1})), Error);  // dict is not a tensor
}

BOOST_AUTO_TEST_CASE(state_dict_round_trip_and_strict_errors) {
  auto a = models::make_model("lenet5");
  manual_seed(99);
  auto b = models::make_model("lenet5");
  b->load_state_dict(a->state_dict());
  BOOST_TEST(b->find("conv1")->param("weight").to_vector() == a->find("conv1")->param("weight").to_vector());
  auto sd = a->state_dict();
  sd.erase("fc1.bias");
  sd["extra.weight"] = Tensor::zeros({1});
  try {
    b->load_state_dict(sd);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    BOOST_TEST(m.find("missing keys: fc1.bias") != std::string::npos, m);
    BOOST_TEST(m.find("unexpected keys: extra.weight") != std::string::npos, m);
  }
  b->load_state_dict(sd, /*strict=*/false);
  auto bad = a->state_dict();
  bad["fc3.weight"] = Tensor::zeros({3, 3});
  BOOST_CHECK_THROW(b->load_state_dict(bad, false), Error);
}

BOOST_AUTO_TEST_CASE(train_eval_modes_and_batchnorm_buffers) {
  auto vgg = models::make_model("vgg_small");
  vgg->eval();
  BOOST_TEST(!vgg->find("features.bn1")->is_training());
  vgg->train();
  (*vgg)(Tensor::ones({2, 1, 28, 28}));
  BOOST_TEST(vgg->find("features.bn1")->param("num_batches_tracked").item() == 1.f);
  auto bufs = vgg->named_buffers();
  BOOST_TEST(bufs.front().first == "features.bn1.running_mean");
}

// A forward override replaces forward() while hooks still run around it; removing its handle
// restores the module's own forward (a batch norm fused away acts as the identity this way).
BOOST_AUTO_TEST_CASE(forward_override) {
  ReLU relu;
  std::vector<std::string> seen;
  auto pre = relu.register_forward_pre_hook([&](Module&, const std::vector<Value>&) -> std::optional<std::vector<Value>> {
    seen.push_back("pre");
    return std::nullopt;
  });
  auto post = relu.register_forward_hook([&](Module&, const std::vector<Value>&, const Value&) -> std::optional<Value> {
    seen.push_back("post");
    return std::nullopt;
  });
  Tensor x = Tensor::from_vector({-1.f, 2.f}, {2});
  HookHandle h = relu.override_forward([&](Module&, const std::vector<Value>& in) {
    seen.push_back("override");
    return in[0];
  });
  BOOST_TEST(relu(x).to_vector() == std::vector<float>({-1.f, 2.f}), boost::test_tools::per_element());
  BOOST_TEST((seen == std::vector<std::string>{"pre", "override", "post"}));
  h.remove();
  BOOST_TEST(relu(x).to_vector() == std::vector<float>({0.f, 2.f}), boost::test_tools::per_element());
}

// A LayerNorm that pruning speedup took features from still counts their constants: on the kept
// features it equals the full LayerNorm (the fused op) over the input with the constants appended,
// values and input gradients.
BOOST_AUTO_TEST_CASE(layer_norm_with_removed_features) {
  manual_seed(5);
  const std::vector<float> c{0.7f, -1.2f, 0.f};
  const Tensor x = mul(randn({3, 2, 5}), 2.f).set_requires_grad(true), w = randn({8}), b = randn({8});
  const Tensor consts = expand(Tensor::from_vector(c, {1, 1, 3}), {3, 2, 3});
  const Tensor full = layer_norm(cat({x, consts}, 2), {8}, w, b, 1e-5f);
  const Tensor r = randn({3, 2, 5});
  Tensor expected_out = slice(full, 2, 0, 5);
  sum(mul(expected_out, r)).backward();
  const Tensor expected_grad = x.grad();
  x.zero_grad();

  LayerNorm ln(Shape{5});
  {
    NoGradGuard ng;
    ln.parameter("weight").copy_(slice(w, 0, 0, 5));
    ln.parameter("bias").copy_(slice(b, 0, 0, 5));
  }
  ln.removed = 3;
  ln.removed_mean = (0.7 - 1.2) / 3;
  ln.removed_m2 = 0.0;
  for (double v : {0.7, -1.2, 0.0}) ln.removed_m2 += (v - ln.removed_mean) * (v - ln.removed_mean);
  const Tensor y = ln(std::vector<Value>{x}).tensor();
  sum(mul(y, r)).backward();
  const std::vector<float> got = y.to_vector(), want = expected_out.contiguous_copy().to_vector();
  const std::vector<float> g = x.grad().to_vector(), gw = expected_grad.to_vector();
  for (size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST(got[i] == want[i], boost::test_tools::tolerance(1e-5f));
    BOOST_TEST(g[i] == gw[i], boost::test_tools::tolerance(1e-4f));
  }
}

BOOST_AUTO_TEST_SUITE_END()
