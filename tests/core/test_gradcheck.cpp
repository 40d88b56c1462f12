// Central-difference gradient checks for every differentiable op (tolerances in gradcheck.h).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>

#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;
using shrink::testing::check_gradients;
using shrink::testing::randn_away_from;
using shrink::testing::seeded_randn;
using V = std::vector<Tensor>;

BOOST_AUTO_TEST_SUITE(gradcheck)

BOOST_AUTO_TEST_CASE(binary_broadcast) {
  check_gradients([](const V& v) { return add(v[0], v[1]); }, {seeded_randn({2, 3}, 1), seeded_randn({3}, 2)});
  check_gradients([](const V& v) { return sub(v[0], v[1]); }, {seeded_randn({2, 1}, 3), seeded_randn({1, 4}, 4)});
  check_gradients([](const V& v) { return mul(v[0], v[1]); }, {seeded_randn({2, 3, 2}, 5), seeded_randn({3, 1}, 6)});
  Tensor den = add(abs(seeded_randn({3}, 8)), 0.5f);
  check_gradients([](const V& v) { return div(v[0], v[1]); }, {seeded_randn({2, 3}, 7), den});
  Tensor base = add(abs(seeded_randn({2, 3}, 9)), 0.5f);
  check_gradients([](const V& v) { return pow(v[0], v[1]); }, {base, seeded_randn({3}, 10, 0.5f)});
  check_gradients([](const V& v) { return maximum(v[0], v[1]); }, {seeded_randn({4}, 11), seeded_randn({4}, 12)});
  check_gradients([](const V& v) { return minimum(v[0], v[1]); }, {seeded_randn({4}, 13), seeded_randn({1}, 14)});
}

BOOST_AUTO_TEST_CASE(scalar_ops) {
  check_gradients([](const V& v) { return add(v[0], 3.f); }, {seeded_randn({5}, 1)});
  check_gradients([](const V& v) { return mul(v[0], -2.5f); }, {seeded_randn({5}, 2)});
  Tensor pos = add(abs(seeded_randn({5}, 3)), 0.5f);
  check_gradients([](const V& v) { return pow(v[0], 2.5f); }, {pos});
  check_gradients([](const V& v) { return v[0] / 4.f; }, {seeded_randn({5}, 4)});
}

BOOST_AUTO_TEST_CASE(unary_math) {
  Tensor pos = add(abs(seeded_randn({6}, 1)), 0.5f);
  check_gradients([](const V& v) { return neg(v[0]); }, {seeded_randn({6}, 2)});
  check_gradients([](const V& v) { return exp(v[0]); }, {seeded_randn({6}, 3)});
  check_gradients([](const V& v) { return log(v[0]); }, {pos});
  check_gradients([](const V& v) { return sqrt(v[0]); }, {pos});
  check_gradients([](const V& v) { return abs(v[0]); }, {randn_away_from({6}, {0.f}, 0.05f, 4)});
  check_gradients([](const V& v) { return clamp(v[0], -0.5f, 0.5f); },
                  {randn_away_from({8}, {-0.5f, 0.5f}, 0.05f, 5)});
}

BOOST_AUTO_TEST_CASE(zero_gradient_ops) {
  // sign and round have zero gradient almost everywhere; the numeric check agrees away from
  // their jumps.
  check_gradients([](const V& v) { return sign(v[0]); }, {randn_away_from({6}, {0.f}, 0.05f, 6)});
  check_gradients([](const V& v) { return round(v[0]); },
                  {randn_away_from({6}, {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f}, 0.05f, 7)});
}

BOOST_AUTO_TEST_CASE(activations) {
  check_gradients([](const V& v) { return relu(v[0]); }, {randn_away_from({8}, {0.f}, 0.05f, 1)});
  check_gradients([](const V& v) { return relu6(mul(v[0], 4.f)); },
                  {randn_away_from({8}, {0.f, 1.5f}, 0.05f, 2)});
  check_gradients([](const V& v) { return gelu(v[0]); }, {seeded_randn({8}, 3)});
  check_gradients([](const V& v) { return sigmoid(v[0]); }, {seeded_randn({8}, 4)});
  check_gradients([](const V& v) { return tanh(v[0]); }, {seeded_randn({8}, 5)});
  check_gradients([](const V& v) { return softmax(v[0], 1); }, {seeded_randn({2, 3, 2}, 6)});
  check_gradients([](const V& v) { return log_softmax(v[0], 0); }, {seeded_randn({3, 2}, 7)});
}

BOOST_AUTO_TEST_CASE(linalg) {
  check_gradients([](const V& v) { return matmul(v[0], v[1]); }, {seeded_randn({2, 3, 4}, 1), seeded_randn({4, 2}, 2)});
  check_gradients([](const V& v) { return matmul(v[0], v[1]); }, {seeded_randn({2, 3, 4}, 3), seeded_randn({2, 4, 2}, 4)});
  check_gradients([](const V& v) { return linear(v[0], v[1], v[2]); },
                  {seeded_randn({3, 4}, 5), seeded_randn({2, 4}, 6), seeded_randn({2}, 7)});
  check_gradients([](const V& v) { return linear(v[0], v[1]); }, {seeded_randn({2, 2, 4}, 8), seeded_randn({3, 4}, 9)});
}

BOOST_AUTO_TEST_CASE(conv2d_variants) {
  Conv2dOptions plain;
  check_gradients([plain](const V& v) { return conv2d(v[0], v[1], v[2], plain); },
                  {seeded_randn({2, 2, 5, 4}, 1), seeded_randn({3, 2, 3, 2}, 2), seeded_randn({3}, 3)});
  Conv2dOptions strided;
  strided.stride_h = 2; strided.stride_w = 1; strided.pad_h = 1; strided.pad_w = 2;
  strided.dil_h = 1; strided.dil_w = 2;
  check_gradients([strided](const V& v) { return conv2d(v[0], v[1], Tensor(), strided); },
                  {seeded_randn({1, 2, 5, 5}, 4), seeded_randn({2, 2, 3, 2}, 5)});
  Conv2dOptions grouped;
  grouped.groups = 2; grouped.pad_h = grouped.pad_w = 1;
  check_gradients([grouped](const V& v) { return conv2d(v[0], v[1], v[2], grouped); },
                  {seeded_randn({2, 4, 4, 4}, 6), seeded_randn({6, 2, 3, 3}, 7), seeded_randn({6}, 8)});
  Conv2dOptions depthwise;
  depthwise.groups = 3; depthwise.pad_h = depthwise.pad_w = 1;
  check_gradients([depthwise](const V& v) { return conv2d(v[0], v[1], Tensor(), depthwise); },
                  {seeded_randn({1, 3, 4, 4}, 9), seeded_randn({3, 1, 3, 3}, 10)});
  Conv2dOptions pointwise;
  check_gradients([pointwise](const V& v) { return conv2d(v[0], v[1], Tensor(), pointwise); },
                  {seeded_randn({2, 3, 3, 3}, 11), seeded_randn({2, 3, 1, 1}, 12)});
  // One image, 1x1: the image itself is the GEMM operand (no im2col), and a large image
  // (>= 512 outputs) takes the one-image-per-GEMM path.
  check_gradients([pointwise](const V& v) { return conv2d(v[0], v[1], v[2], pointwise); },
                  {seeded_randn({1, 3, 3, 3}, 13), seeded_randn({2, 3, 1, 1}, 14), seeded_randn({2}, 15)});
  Conv2dOptions padded;
  padded.pad_h = padded.pad_w = 1;
  check_gradients([padded](const V& v) { return sum(conv2d(v[0], v[1], v[2], padded), {2, 3}); },
                  {seeded_randn({2, 1, 24, 24}, 16), seeded_randn({2, 1, 3, 3}, 17), seeded_randn({2}, 18)},
                  {1e-2f, 2e-2, 2e-2});
}

BOOST_AUTO_TEST_CASE(pooling) {
  // Distinct values keep the max unique, so the numeric derivative is well defined.
  Tensor x = add(mul(Tensor::arange(2 * 2 * 5 * 5).reshape({2, 2, 5, 5}), 0.1f), seeded_randn({2, 2, 5, 5}, 1, 0.01f));
  check_gradients([](const V& v) { return max_pool2d(v[0], 2, 2); }, {x});
  check_gradients([](const V& v) { return max_pool2d(v[0], 3, 2, 1); }, {x});
  check_gradients([](const V& v) { return avg_pool2d(v[0], 3, 2, 1); }, {seeded_randn({1, 2, 5, 5}, 2)});
  check_gradients([](const V& v) { return avg_pool2d(v[0], 3, 2, 1, false); }, {seeded_randn({1, 2, 5, 5}, 3)});
  check_gradients([](const V& v) { return adaptive_avg_pool2d(v[0], 2, 3); }, {seeded_randn({1, 2, 5, 7}, 4)});
}

BOOST_AUTO_TEST_CASE(normalisation) {
  check_gradients([](const V& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1f, 1e-5f); },
                  {seeded_randn({4, 3, 2, 2}, 1), add(seeded_randn({3}, 2), 1.f), seeded_randn({3}, 3)});
  Tensor rm = seeded_randn({3}, 4, 0.1f), rv = add(abs(seeded_randn({3}, 5)), 0.5f);
  check_gradients([rm, rv](const V& v) { return batch_norm(v[0], v[1], v[2], rm, rv, false, 0.1f, 1e-5f); },
                  {seeded_randn({4, 3}, 6), seeded_randn({3}, 7), seeded_randn({3}, 8)});
  // batch_norm_relu: every pre-activation must stay clear of the ReLU's kink by more than a
  // central difference moves it (about eps * |w| * invstd), or the numeric slope straddles it.
  auto clear_of_kink = [](const Tensor& pre) {
    float closest = INFINITY;
    for (float v : pre.to_vector()) closest = std::min(closest, std::fabs(v));
    BOOST_REQUIRE_MESSAGE(closest > 0.05f, "a pre-activation lies " << closest << " from the kink");
  };
  {
    const V in{seeded_randn({3, 2, 2, 2}, 21), add(seeded_randn({2}, 22, 0.3f), 1.f), seeded_randn({2}, 23),
               seeded_randn({3, 2, 2, 2}, 24)};
    clear_of_kink(add(batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1f, 1e-5f), in[3]));
    clear_of_kink(batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1f, 1e-5f));
    check_gradients([](const V& v) { return batch_norm_relu(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1f, 1e-5f, v[3]); },
                    in);
    check_gradients([](const V& v) { return batch_norm_relu(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1f, 1e-5f); },
                    {in[0], in[1], in[2]});
    const Tensor rm2 = seeded_randn({2}, 25, 0.1f), rv2 = add(abs(seeded_randn({2}, 26)), 0.5f);
    clear_of_kink(add(batch_norm(in[0], in[1], in[2], rm2, rv2, false, 0.1f, 1e-5f), in[3]));
    check_gradients([rm2, rv2](const V& v) { return batch_norm_relu(v[0], v[1], v[2], rm2, rv2, false, 0.1f, 1e-5f, v[3]); },
                    in);
  }
  check_gradients([](const V& v) { return layer_norm(v[0], {4}, v[1], v[2], 1e-5f); },
                  {seeded_randn({3, 4}, 9), add(seeded_randn({4}, 10), 1.f), seeded_randn({4}, 11)});
  check_gradients([](const V& v) { return layer_norm(v[0], {2, 3}, Tensor(), Tensor(), 1e-5f); },
                  {seeded_randn({2, 2, 3}, 12)});
}

BOOST_AUTO_TEST_CASE(losses) {
  Tensor target = Tensor::from_vector_i64({2, 0, 1}, {3});
  check_gradients([target](const V& v) { return cross_entropy(v[0], target); }, {seeded_randn({3, 4}, 1)});
  check_gradients([target](const V& v) { return cross_entropy(v[0], target, Reduction::Sum); }, {seeded_randn({3, 4}, 2)});
  check_gradients([target](const V& v) { return nll_loss(log_softmax(v[0], 1), target, Reduction::None); }, {seeded_randn({3, 4}, 3)});
  check_gradients([](const V& v) { return mse_loss(v[0], v[1]); }, {seeded_randn({2, 3}, 4), seeded_randn({2, 3}, 5)});
  Tensor p = softmax(seeded_randn({2, 3}, 6), 1);
  check_gradients([p](const V& v) { return kl_div(log_softmax(v[0], 1), p, Reduction::BatchMean); }, {seeded_randn({2, 3}, 7)});
  check_gradients([](const V& v) { return kl_div(v[0], log_softmax(v[1], 1), Reduction::Sum, true); },
                  {seeded_randn({2, 3}, 8), seeded_randn({2, 3}, 9)});
}

BOOST_AUTO_TEST_CASE(embedding_and_dropout) {
  Tensor idx = Tensor::from_vector_i64({1, 3, 1}, {3});
  check_gradients([idx](const V& v) { return embedding(v[0], idx); }, {seeded_randn({4, 2}, 1)});
  check_gradients([](const V& v) {
    Generator g(5);  // same mask on every evaluation
    return dropout(v[0], 0.3f, true, g);
  }, {seeded_randn({10}, 2)});
}

BOOST_AUTO_TEST_CASE(shape_ops) {
  check_gradients([](const V& v) { return reshape(v[0], {3, 2}); }, {seeded_randn({2, 3}, 1)});
  check_gradients([](const V& v) { return flatten(v[0], 1); }, {seeded_randn({2, 3, 2}, 2)});
  check_gradients([](const V& v) { return permute(v[0], {2, 0, 1}); }, {seeded_randn({2, 3, 4}, 3)});
  check_gradients([](const V& v) { return transpose(v[0], 0, 1); }, {seeded_randn({2, 3}, 4)});
  check_gradients([](const V& v) { return slice(v[0], 1, 1, 4, 2); }, {seeded_randn({2, 5}, 5)});
  check_gradients([](const V& v) { return slice(v[0], 0, 1, 3); }, {seeded_randn({4, 2}, 6)});
  check_gradients([](const V& v) { return cat({v[0], v[1]}, 1); }, {seeded_randn({2, 1}, 7), seeded_randn({2, 3}, 8)});
  check_gradients([](const V& v) { return stack({v[0], v[1]}, 0); }, {seeded_randn({3}, 9), seeded_randn({3}, 10)});
  check_gradients([](const V& v) { return expand(v[0], {2, 3, 4}); }, {seeded_randn({3, 1}, 11)});
  check_gradients([](const V& v) { return squeeze(unsqueeze(v[0], 1), 1); }, {seeded_randn({3}, 12)});
}

BOOST_AUTO_TEST_CASE(reductions) {
  check_gradients([](const V& v) { return sum(v[0]); }, {seeded_randn({2, 3}, 1)});
  check_gradients([](const V& v) { return mean(v[0]); }, {seeded_randn({2, 3}, 2)});
  check_gradients([](const V& v) { return sum(v[0], {0, 2}); }, {seeded_randn({2, 3, 2}, 3)});
  check_gradients([](const V& v) { return mean(v[0], {1}, true); }, {seeded_randn({2, 3, 2}, 4)});
  check_gradients([](const V& v) { return max(v[0], 1); }, {seeded_randn({3, 4}, 5)});
  check_gradients([](const V& v) { return min(v[0], 0, true); }, {seeded_randn({3, 4}, 6)});
  check_gradients([](const V& v) { return max(v[0]); }, {seeded_randn({3, 4}, 7)});
  check_gradients([](const V& v) { return kthvalue(v[0], 2, 1); }, {seeded_randn({3, 5}, 8)});
  check_gradients([](const V& v) { return topk(v[0], 2, 0).values; }, {seeded_randn({4, 3}, 9)});
  // norm: |x| has a kink at 0, so values stay away from it.
  check_gradients([](const V& v) { return norm(v[0], 1, {1, 3}); }, {randn_away_from({2, 3, 1, 2}, {0.f}, 0.05f, 10)});
  check_gradients([](const V& v) { return norm(v[0], 2, {0}, true); }, {seeded_randn({4, 3}, 11)});
  check_gradients([](const V& v) { return norm(v[0], 2, {1, 2}); }, {seeded_randn({3, 2, 2}, 12)});
}

BOOST_AUTO_TEST_CASE(norm_gradient_of_a_zero_block_is_zero) {
  // d||x||/dx = x / ||x|| has no limit at 0; as torch, the gradient there is 0 (not NaN).
  Tensor x = Tensor::from_vector({0.f, 0.f, 3.f, -4.f}, {2, 2});
  x.set_requires_grad(true);
  sum(norm(x, 2, {1})).backward();
  BOOST_TEST(x.grad().to_vector() == (std::vector<float>{0.f, 0.f, 0.6f, -0.8f}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(selection) {
  Tensor cond = Tensor::from_vector({1, 0, 0, 1, 1, 0}, {2, 3});
  check_gradients([cond](const V& v) { return where(cond, v[0], v[1]); }, {seeded_randn({2, 3}, 1), seeded_randn({3}, 2)});
  check_gradients([cond](const V& v) { return masked_fill(v[0], cond, 2.f); }, {seeded_randn({2, 3}, 3)});
}

BOOST_AUTO_TEST_SUITE_END()
