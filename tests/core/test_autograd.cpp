// Autograd engine semantics: accumulation, detach, no-grad, shared subgraphs, scope recording.
#include <boost/test/unit_test.hpp>

#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;
using shrink::testing::check_close;

BOOST_AUTO_TEST_SUITE(autograd)

BOOST_AUTO_TEST_CASE(accumulates_across_backward_calls) {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad(true);
  sum(mul(x, x)).backward();
  check_close(x.grad().to_vector(), {2, 4}, 0, "first");
  sum(mul(x, 3.f)).backward();
  check_close(x.grad().to_vector(), {5, 7}, 0, "accumulated");
  x.zero_grad();
  BOOST_TEST(!x.grad().defined());
}

BOOST_AUTO_TEST_CASE(diamond_graph_sums_paths) {
  Tensor x = Tensor::from_vector({3}, {1}).set_requires_grad(true);
  Tensor a = mul(x, 2.f);
  Tensor y = add(mul(a, a), a);  // y = 4x^2 + 2x, dy/dx = 8x + 2 = 26
  y.backward(Tensor::ones({1}));
  check_close(x.grad().to_vector(), {26}, 0, "diamond");
}

BOOST_AUTO_TEST_CASE(detach_and_no_grad_stop_gradients) {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad(true);
  Tensor d = x.detach();
  BOOST_TEST(!d.requires_grad());
  BOOST_TEST(d.shares_storage(x));
  {
    NoGradGuard ng;
    Tensor y = mul(x, 2.f);
    BOOST_TEST(!y.requires_grad());
  }
  Tensor z = add(mul(x, d), 0.f);  // gradient only through the first factor
  sum(z).backward();
  check_close(x.grad().to_vector(), {1, 2}, 0, "detach");
}

BOOST_AUTO_TEST_CASE(backward_errors) {
  Tensor x = Tensor::from_vector({1, 2}, {2});
  BOOST_CHECK_THROW(x.backward(), Error);  // does not require grad
  x.set_requires_grad(true);
  Tensor y = mul(x, 2.f);
  BOOST_CHECK_THROW(y.backward(), Error);  // not a scalar
  Tensor s = sum(y);
  s.backward();
  BOOST_CHECK_THROW(s.backward(), Error);  // graph freed
}

BOOST_AUTO_TEST_CASE(nodes_record_kind_and_scope) {
  auto lin = std::make_shared<nn::Linear>(3, 2);
  Tensor x = Tensor::ones({1, 3});
  Tensor y = (*lin)(x);
  BOOST_REQUIRE(y.grad_fn());
  BOOST_TEST(y.grad_fn()->kind == OpKind::Linear);
  BOOST_TEST(y.grad_fn()->scope == static_cast<const void*>(lin.get()));
  Tensor z = relu(y);
  BOOST_TEST(z.grad_fn()->kind == OpKind::Relu);
  BOOST_TEST(z.grad_fn()->scope == nullptr);
}

BOOST_AUTO_TEST_CASE(node_grad_hook_can_rewrite) {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad(true);
  Tensor y = mul(x, 1.f);
  y.register_hook([](const Tensor& g) { return mul(g, 10.f); });
  sum(y).backward();
  check_close(x.grad().to_vector(), {10, 10}, 0, "hook");
}

// A leaf's hook sees the pass's total gradient (x is used twice: 2 + 3 per element), once per
// pass, before it is added to grad(); a removed hook no longer runs.
BOOST_AUTO_TEST_CASE(leaf_grad_hook_sees_the_pass_total) {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad(true);
  std::vector<std::vector<float>> seen;
  const uint64_t id = x.register_hook([&](const Tensor& g) {
    seen.push_back(g.to_vector());
    return mul(g, 0.5f);
  });
  add(mul(x, 2.f), mul(x, 3.f)).sum().backward();
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  check_close(seen[0], {5, 5}, 0, "hook input");
  check_close(x.grad().to_vector(), {2.5f, 2.5f}, 0, "halved");
  add(mul(x, 2.f), mul(x, 3.f)).sum().backward();  // accumulates: 2.5 + 2.5
  check_close(x.grad().to_vector(), {5, 5}, 0, "accumulated");
  x.remove_hook(id);
  x.zero_grad();
  mul(x, 4.f).sum().backward();
  BOOST_TEST(seen.size() == 2u);
  check_close(x.grad().to_vector(), {4, 4}, 0, "unhooked");
}

// A backward pass run from inside a gradient hook (on another graph; a shared node would be freed
// by the inner pass, as without retain_graph in PyTorch) leaves the outer pass's gradients and
// marks intact, whichever order the outer pass reaches its branches in.
BOOST_AUTO_TEST_CASE(backward_inside_a_hook_leaves_the_outer_pass_intact) {
  for (bool c_first : {true, false}) {
    Tensor x = Tensor::from_vector({1.f, -2.f}, {2}).set_requires_grad(true);
    Tensor z = Tensor::from_vector({3.f}, {1}).set_requires_grad(true);
    Tensor y = mul(x, 2.f);
    Tensor c = mul(y, 7.f), a = mul(y, 3.f), inner = sum(mul(mul(z, 5.f), 1.f));
    int nested = 0;
    a.register_hook([&](const Tensor& g) {
      ++nested;
      inner.backward();
      return g;
    });
    Tensor loss = c_first ? add(sum(c), sum(a)) : add(sum(a), sum(c));
    loss.backward();
    BOOST_TEST(nested == 1);
    BOOST_TEST(x.grad().to_vector() == (std::vector<float>{20.f, 20.f}), boost::test_tools::per_element());
    BOOST_TEST(z.grad().to_vector() == (std::vector<float>{5.f}), boost::test_tools::per_element());
  }
}

// A hooked leaf's hooks run once its last contribution of the pass is in, before backward
// reaches the rest of the graph (data-parallel reduction overlaps backward this way), and see the
// pass's total. Here w2 (used twice, near the loss) is finished before w1's branch is processed:
// the unhooked w1 has no gradient yet when w2's hook runs; w3's only edge carries no gradient
// (its input does not require grad), so its hook runs when the pass ends.
BOOST_AUTO_TEST_CASE(leaf_hooks_run_as_soon_as_the_leaf_is_complete) {
  Tensor w1 = Tensor::from_vector({2.f}, {1}).set_requires_grad(true);
  Tensor w2 = Tensor::from_vector({3.f}, {1}).set_requires_grad(true);
  Tensor h = mul(w1, 5.f);           // far from the loss
  Tensor y = mul(mul(h, w2), w2);    // y = 5 w1 w2^2: dy/dw2 = 10 w1 w2 = 60 (two edges)
  std::vector<std::string> events;
  w2.register_hook([&](const Tensor& g) {
    events.push_back("w2 " + std::to_string(g.to_vector()[0]) + (w1.grad().defined() ? " after w1" : " before w1"));
    return Tensor();
  });
  sum(y).backward();
  BOOST_REQUIRE_EQUAL(events.size(), 1u);
  BOOST_TEST(events[0] == "w2 60.000000 before w1");
  check_close(w1.grad().to_vector(), {45.f}, 0, "w1");  // 5 w2^2
  check_close(w2.grad().to_vector(), {60.f}, 0, "w2");
}

// A hook registered on a leaf during the pass (here by another leaf's hook, before the leaf's
// only contribution arrives) runs once, when the pass ends, with the leaf's total.
BOOST_AUTO_TEST_CASE(a_leaf_hooked_during_the_pass_gets_its_total_once) {
  Tensor w1 = Tensor::from_vector({2.f}, {1}).set_requires_grad(true);
  Tensor w2 = Tensor::from_vector({3.f}, {1}).set_requires_grad(true);
  Tensor y = mul(mul(mul(w1, 5.f), w1), w2);  // y = 5 w1^2 w2: dy/dw1 = 10 w1 w2 = 60 (two edges)
  std::vector<float> seen;
  w2.register_hook([&](const Tensor& g) {
    w1.register_hook([&](const Tensor& g1) {
      seen.push_back(g1.to_vector()[0]);
      return Tensor();
    });
    return g;
  });
  sum(y).backward();
  BOOST_TEST(seen == (std::vector<float>{60.f}), boost::test_tools::per_element());
  check_close(w1.grad().to_vector(), {60.f}, 0, "w1");
}

BOOST_AUTO_TEST_SUITE_END()
