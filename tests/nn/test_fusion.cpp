// Fused BatchNorm + ReLU (nn/fusion.h and the batch_norm_relu op): bit for bit what batch_norm,
// add and relu give one by one (values, every gradient, running statistics), and taken only for
// module pairs that nothing intercepts.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <set>

#include "framework/cpu/conv_direct.h"
#include "framework/optim/optimizer.h"
#include "framework/shrink.h"
#include "gradcheck.h"
#include "models/zoo.h"

using namespace shrink;
using shrink::testing::seeded_randn;

namespace {
bool same_bits(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  const std::vector<float> u = a.to_vector(), v = b.to_vector();
  return u.size() == v.size() && std::memcmp(u.data(), v.data(), u.size() * sizeof(float)) == 0;
}

struct Run {
  Tensor y, gx, gw, gb, gr, rm, rv;
};

// relu(bn(x) + r) fused or as three ops, then the gradients of sum(y * g).
Run run_op(bool fused, bool training, bool residual, bool affine) {
  Tensor x = add(seeded_randn({4, 3, 5, 6}, 1, 2.f), 0.3f).set_requires_grad(true);
  Tensor w = affine ? add(seeded_randn({3}, 2, 0.5f), 1.f).set_requires_grad(true) : Tensor();
  Tensor b = affine ? seeded_randn({3}, 3).set_requires_grad(true) : Tensor();
  Tensor r = residual ? seeded_randn({4, 3, 5, 6}, 4).set_requires_grad(true) : Tensor();
  Tensor rm = seeded_randn({3}, 5, 0.1f), rv = add(abs(seeded_randn({3}, 6)), 0.5f);
  Tensor y;
  if (fused) {
    y = batch_norm_relu(x, w, b, rm, rv, training, 0.1f, 1e-5f, r);
  } else {
    y = batch_norm(x, w, b, rm, rv, training, 0.1f, 1e-5f);
    y = relu(residual ? add(y, r) : y);
  }
  sum(mul(y, seeded_randn(y.shape(), 7))).backward();
  return {y, x.grad(), affine ? w.grad() : Tensor(), affine ? b.grad() : Tensor(),
          residual ? r.grad() : Tensor(), rm, rv};
}

// How many nodes of each kind the tape behind `t` holds.
std::multiset<OpKind> tape_kinds(const Tensor& t) {
  std::multiset<OpKind> kinds;
  std::vector<const Node*> stack{t.grad_fn().get()};
  std::set<const Node*> seen;
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!n || !seen.insert(n).second) continue;
    kinds.insert(n->kind);
    for (const Tensor& in : n->inputs)
      if (in.defined()) stack.push_back(in.grad_fn().get());
  }
  return kinds;
}

std::shared_ptr<nn::Sequential> conv_bn_relu(uint64_t seed) {
  manual_seed(seed);
  auto s = std::make_shared<nn::Sequential>();
  s->push_back("conv", std::make_shared<nn::Conv2d>(2, 4, 3, 1, 1));
  s->push_back("bn", std::make_shared<nn::BatchNorm2d>(4));
  s->push_back("relu", std::make_shared<nn::ReLU>());
  return s;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(fusion)

BOOST_AUTO_TEST_CASE(op_equals_batch_norm_add_relu_bit_for_bit) {
  for (bool training : {true, false})
    for (bool residual : {false, true})
      for (bool affine : {true, false}) {
        BOOST_TEST_CONTEXT("training " << training << " residual " << residual << " affine " << affine) {
          const Run f = run_op(true, training, residual, affine), u = run_op(false, training, residual, affine);
          // The mask matters: a good share of the outputs are clamped and a good share pass.
          int64_t zeros = 0;
          for (float v : f.y.to_vector()) zeros += v == 0.f;
          BOOST_TEST(zeros > f.y.numel() / 5);
          BOOST_TEST(zeros < f.y.numel() * 4 / 5);
          BOOST_TEST(same_bits(f.y, u.y));
          BOOST_TEST(same_bits(f.gx, u.gx));
          BOOST_TEST(same_bits(f.gw, u.gw));
          BOOST_TEST(same_bits(f.gb, u.gb));
          BOOST_TEST(same_bits(f.gr, u.gr));
          BOOST_TEST(same_bits(f.rm, u.rm));
          BOOST_TEST(same_bits(f.rv, u.rv));
        }
      }
}

BOOST_AUTO_TEST_CASE(residual_must_match_the_input) {
  const Tensor x = seeded_randn({2, 3, 4, 4}, 1), r = seeded_randn({2, 3, 4, 3}, 2);
  try {
    batch_norm_relu(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1f, 1e-5f, r);
    BOOST_FAIL("a residual of another shape was accepted");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("batch_norm_relu: residual [2, 3, 4, 3]") != std::string::npos, msg);
    BOOST_TEST(msg.find("[2, 3, 4, 4]") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(sequential_fuses_a_pair_that_nothing_intercepts) {
  const Tensor x = seeded_randn({3, 2, 5, 5}, 9);
  auto fused = conv_bn_relu(11), plain = conv_bn_relu(11);
  const Tensor yf = (*fused)(x);
  Tensor yp;
  {
    nn::FusionGuard off(false);
    yp = (*plain)(x);
  }
  const auto kf = tape_kinds(yf), kp = tape_kinds(yp);
  BOOST_TEST(kf.count(OpKind::BatchNormRelu) == 1u);
  BOOST_TEST(kf.count(OpKind::Relu) == 0u);
  BOOST_TEST(kp.count(OpKind::BatchNormRelu) == 0u);
  BOOST_TEST(kp.count(OpKind::BatchNorm) == 1u);
  BOOST_TEST(kp.count(OpKind::Relu) == 1u);
  BOOST_TEST(same_bits(yf, yp));
  sum(yf).backward();
  sum(yp).backward();
  const auto sf = fused->state_dict(), sp = plain->state_dict();
  BOOST_TEST(sf.at("bn.num_batches_tracked").to_vector() == std::vector<float>{1.f});
  for (const auto& [name, t] : sf) BOOST_TEST(same_bits(t, sp.at(name)), name);
  const auto pf = fused->named_parameters(), pp = plain->named_parameters();
  BOOST_REQUIRE(pf.size() == pp.size());
  for (size_t i = 0; i < pf.size(); ++i) BOOST_TEST(same_bits(pf[i].second.grad(), pp[i].second.grad()), pf[i].first);
}

BOOST_AUTO_TEST_CASE(a_hook_on_either_module_keeps_the_modules_apart) {
  const Tensor x = seeded_randn({3, 2, 5, 5}, 9);
  for (const char* hooked : {"bn", "relu"}) {
    auto s = conv_bn_relu(11);
    Tensor seen;
    nn::HookHandle h = (*s)[std::string(hooked) == "bn" ? 1 : 2]->register_forward_hook(
        [&](nn::Module&, const std::vector<nn::Value>& in, const nn::Value&) -> std::optional<nn::Value> {
          seen = in.at(0).tensor();
          return std::nullopt;
        });
    const Tensor y = (*s)(x);
    BOOST_TEST(tape_kinds(y).count(OpKind::BatchNormRelu) == 0u, hooked);
    BOOST_TEST(seen.defined(), hooked);
    h.remove();
    BOOST_TEST(tape_kinds((*s)(x)).count(OpKind::BatchNormRelu) == 1u, hooked);  // fused again
  }
  // A batch norm whose statistics come from elsewhere (SyncBatchNorm) is not fused either.
  auto s = conv_bn_relu(11);
  std::static_pointer_cast<nn::BatchNorm>((*s)[1])->set_batch_statistics([](const Tensor& t) {
    const Tensor m = mean(t, {0, 2, 3}, true), d = sub(t, m);
    return nn::BatchNorm::BatchStatistics{reshape(m, {t.size(1)}), mean(mul(d, d), {0, 2, 3}),
                                          static_cast<double>(t.numel() / t.size(1))};
  });
  BOOST_TEST(tape_kinds((*s)(x)).count(OpKind::BatchNormRelu) == 0u);
}

BOOST_AUTO_TEST_CASE(resnet20_trains_the_same_fused_and_unfused) {
  // Ten fused pairs (the stem and every block's first) and nine with the residual.
  const Tensor x = seeded_randn({4, 1, 28, 28}, 21);
  const Tensor target = Tensor::from_vector_i64({1, 7, 3, 0}, {4});
  std::map<std::string, Tensor> state[2];
  std::multiset<OpKind> kinds[2];
  for (int fused = 0; fused < 2; ++fused) {
    nn::FusionGuard mode(fused == 1);
    manual_seed(5);
    auto model = models::make_model("resnet20");
    optim::SGD sgd(model->parameters(), 0.1f, 0.9f);
    for (int step = 0; step < 2; ++step) {
      sgd.zero_grad();
      Tensor loss = cross_entropy((*model)(x), target);
      if (step == 0) kinds[fused] = tape_kinds(loss);
      loss.backward();
      sgd.step();
    }
    model->eval();
    state[fused] = model->state_dict();
    state[fused]["eval_output"] = (*model)(x);
  }
  BOOST_TEST(kinds[1].count(OpKind::BatchNormRelu) == 19u);
  BOOST_TEST(kinds[1].count(OpKind::Relu) == 0u);
  BOOST_TEST(kinds[0].count(OpKind::Relu) == 19u);
  for (const auto& [name, t] : state[1]) BOOST_TEST(same_bits(t, state[0].at(name)), name);
}

BOOST_AUTO_TEST_CASE(conv2d_batch_norm_equals_the_ops_in_turn_bit_for_bit) {
  // c = 4 takes the direct convolution (the epilogue per image) where the CPU has it, c = 1 and
  // groups = 2 im2col (the epilogue per chunk of images); then everything on im2col.
  if (!cpu::direct_conv::available())
    BOOST_TEST_MESSAGE("no AVX-512: the direct convolution's per-image epilogue is not exercised here");
  struct Case { int64_t c, groups; bool direct; };
  for (const Case k : {Case{4, 1, true}, Case{1, 1, true}, Case{4, 2, true}, Case{4, 1, false}})
    for (bool conv_bias : {true, false})
      for (bool affine : {true, false})
        for (bool relu : {false, true})
          for (bool residual : {false, true}) {
            BOOST_TEST_CONTEXT("c " << k.c << " groups " << k.groups << " direct " << k.direct << " bias "
                                    << conv_bias << " affine " << affine << " relu " << relu << " residual "
                                    << residual) {
              const bool was = cpu::direct_conv::enabled();
              cpu::direct_conv::set_enabled(k.direct);
              Conv2dOptions o;
              o.pad_h = o.pad_w = 1;
              o.stride_h = 2;
              o.groups = k.groups;
              const Tensor x = seeded_randn({3, k.c, 9, 8}, 1), w = seeded_randn({6, k.c / k.groups, 3, 3}, 2);
              const Tensor b = conv_bias ? seeded_randn({6}, 3) : Tensor();
              const Tensor g = affine ? add(seeded_randn({6}, 4, 0.5f), 1.f) : Tensor();
              const Tensor beta = affine ? seeded_randn({6}, 5) : Tensor();
              const Tensor rm = seeded_randn({6}, 6), rv = add(abs(seeded_randn({6}, 7)), 0.5f);
              const Tensor r = residual ? seeded_randn({3, 6, 5, 8}, 8) : Tensor();
              Tensor want = batch_norm(conv2d(x, w, b, o), g, beta, rm, rv, false, 0.1f, 1e-5f);
              if (residual) want = add(want, r);
              if (relu) want = shrink::relu(want);
              const Tensor got = conv2d_batch_norm(x, w, b, o, g, beta, rm, rv, 1e-5f, relu, r);
              cpu::direct_conv::set_enabled(was);
              BOOST_TEST(same_bits(got, want));
              int64_t zeros = 0;
              for (float v : got.to_vector()) zeros += v == 0.f;
              BOOST_TEST((zeros > got.numel() / 5) == relu);
            }
          }
}

BOOST_AUTO_TEST_CASE(conv2d_batch_norm_is_inference_only) {
  const Tensor x = seeded_randn({2, 3, 5, 5}, 1), w = seeded_randn({4, 3, 3, 3}, 2).set_requires_grad(true);
  const Tensor rm = Tensor::zeros({4}), rv = Tensor::ones({4});
  BOOST_CHECK_THROW(conv2d_batch_norm(x, w, Tensor(), {}, Tensor(), Tensor(), rm, rv, 1e-5f, true), Error);
  NoGradGuard ng;
  BOOST_TEST(conv2d_batch_norm(x, w, Tensor(), {}, Tensor(), Tensor(), rm, rv, 1e-5f, true).numel() == 2 * 4 * 3 * 3);
}

BOOST_AUTO_TEST_CASE(conv_batch_norm_fuses_in_inference_only) {
  const Tensor x = seeded_randn({3, 2, 5, 5}, 9);
  auto s = conv_bn_relu(11);
  nn::Module &conv = *(*s)[0], &bn = *(*s)[1], &relu = *(*s)[2];
  BOOST_TEST(!nn::fuses_conv_batch_norm(conv, bn, &relu, x));  // training
  s->eval();
  BOOST_TEST(!nn::fuses_conv_batch_norm(conv, bn, &relu, x));  // parameters require grad
  {
    NoGradGuard ng;
    BOOST_TEST(nn::fuses_conv_batch_norm(conv, bn, &relu, x));
    BOOST_TEST(nn::fuses_conv_batch_norm(conv, bn, nullptr, x));
    BOOST_TEST(!nn::fuses_conv_batch_norm(conv, relu, nullptr, x));
    nn::HookHandle h = relu.register_forward_pre_hook(
        [](nn::Module&, const std::vector<nn::Value>&) -> std::optional<std::vector<nn::Value>> { return std::nullopt; });
    BOOST_TEST(!nn::fuses_conv_batch_norm(conv, bn, &relu, x));
    BOOST_TEST(nn::fuses_conv_batch_norm(conv, bn, nullptr, x));  // conv + bn still fuse
    h.remove();
    nn::FusionGuard off(false);
    BOOST_TEST(!nn::fuses_conv_batch_norm(conv, bn, &relu, x));
  }
  for (auto& p : s->parameters()) p.set_requires_grad(false);
  BOOST_TEST(nn::fuses_conv_batch_norm(conv, bn, &relu, x));  // grad mode on, nothing to record
}

BOOST_AUTO_TEST_CASE(resnet20_inference_the_same_fused_and_unfused) {
  const Tensor x = seeded_randn({3, 1, 28, 28}, 21);
  manual_seed(5);
  auto model = models::make_model("resnet20");
  {  // running statistics worth the name
    Tensor warm = seeded_randn({8, 1, 28, 28}, 22);
    for (int i = 0; i < 3; ++i) (*model)(warm);
  }
  model->eval();
  NoGradGuard ng;
  const Tensor fused = (*model)(x);
  Tensor plain;
  {
    nn::FusionGuard off(false);
    plain = (*model)(x);
  }
  BOOST_TEST(same_bits(fused, plain));
}

BOOST_AUTO_TEST_CASE(hooked_modules_run_in_the_models_order) {
  // Every module hooked: nothing fuses, and a block with a downsample runs bn2 before it, as
  // the model is written.
  manual_seed(5);
  auto model = models::make_model("resnet20");
  model->eval();
  std::vector<std::string> order;
  std::vector<nn::HookHandle> hooks;
  for (auto& [name, m] : model->named_modules())
    if (name.rfind("layer2.0.", 0) == 0)
      hooks.push_back(m->register_forward_pre_hook(
          [&order, name = name](nn::Module&, const std::vector<nn::Value>&) -> std::optional<std::vector<nn::Value>> {
            order.push_back(name);
            return std::nullopt;
          }));
  NoGradGuard ng;
  (*model)(seeded_randn({2, 1, 28, 28}, 3));
  const std::vector<std::string> want{"layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu", "layer2.0.conv2",
                                      "layer2.0.bn2", "layer2.0.downsample", "layer2.0.downsample.0",
                                      "layer2.0.downsample.1", "layer2.0.relu"};
  BOOST_TEST(order == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_block_with_some_modules_hooked_keeps_their_order) {
  // conv2 and the downsample's convolution hooked (as a quantizer wraps them): bn2 + relu still
  // fuse, and conv2 still runs before the downsample, in training and in inference.
  for (bool training : {true, false}) {
    manual_seed(5);
    auto model = models::make_model("resnet20");
    model->train(training);
    std::vector<std::string> order;
    std::vector<nn::HookHandle> hooks;
    for (auto& [name, m] : model->named_modules())
      if (name == "layer2.0.conv2" || name == "layer2.0.downsample.0")
        hooks.push_back(m->register_forward_pre_hook(
            [&order, name = name](nn::Module&, const std::vector<nn::Value>&)
                -> std::optional<std::vector<nn::Value>> {
              order.push_back(name);
              return std::nullopt;
            }));
    NoGradGuard ng;
    (*model)(seeded_randn({2, 1, 28, 28}, 3));
    BOOST_TEST(order == (std::vector<std::string>{"layer2.0.conv2", "layer2.0.downsample.0"}),
               boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(a_forward_override_or_a_broadcast_residual_runs_unfused) {
  const Tensor x = seeded_randn({3, 4, 5, 5}, 9);
  nn::BatchNorm2d bn(4);
  nn::ReLU relu;
  BOOST_TEST(nn::fuses_batch_norm_relu(bn, relu));
  {
    // Module fusion turns a folded batch norm into the identity this way.
    nn::HookHandle h = bn.override_forward([](nn::Module&, const std::vector<nn::Value>& in) { return in.at(0); });
    BOOST_TEST(!nn::fuses_batch_norm_relu(bn, relu));
    BOOST_TEST(same_bits(nn::batch_norm_relu(bn, relu, x), shrink::relu(x)));
    h.remove();
  }
  // A residual that add broadcasts: the fused op takes only x's shape, so the modules run.
  const Tensor r = seeded_randn({4, 1, 1}, 10);
  Tensor got = nn::batch_norm_relu(bn, relu, x, r);
  BOOST_TEST(tape_kinds(got).count(OpKind::BatchNormRelu) == 0u);
  nn::BatchNorm2d bn2(4);
  BOOST_TEST(same_bits(got, shrink::relu(add(bn2(x), r))));
}

BOOST_AUTO_TEST_SUITE_END()
