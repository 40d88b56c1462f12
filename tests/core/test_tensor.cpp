// Tensor basics, broadcasting values, shape ops and error messages, against hand-computed values.
#include <boost/test/unit_test.hpp>

#include "framework/cpu/host_memory.h"
#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;
using shrink::testing::check_close;

BOOST_AUTO_TEST_SUITE(tensor)

BOOST_AUTO_TEST_CASE(factories_and_metadata) {
  Tensor t = Tensor::zeros({2, 3});
  BOOST_TEST(t.numel() == 6);
  BOOST_TEST(t.dim() == 2);
  BOOST_TEST(t.size(-1) == 3);
  BOOST_TEST(t.describe() == "f32[2, 3]");
  Tensor f = Tensor::full({2}, 2.5f);
  check_close(f.to_vector(), {2.5f, 2.5f}, 0, "full");
  Tensor i = Tensor::from_vector_i64({1, 2, 3}, {3});
  BOOST_TEST(i.dtype() == DType::I64);
  BOOST_CHECK_THROW(i.data<float>(), Error);
  BOOST_CHECK_THROW(Tensor::from_vector({1, 2}, {3}), Error);
}

BOOST_AUTO_TEST_CASE(broadcast_add_mul) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row = Tensor::from_vector({10, 20, 30}, {3});
  Tensor col = Tensor::from_vector({100, 200}, {2, 1});
  check_close((a + row).to_vector(), {11, 22, 33, 14, 25, 36}, 0, "a+row");
  check_close((a * col).to_vector(), {100, 200, 300, 800, 1000, 1200}, 0, "a*col");
  check_close((col - row).to_vector(), {90, 80, 70, 190, 180, 170}, 0, "col-row");
  BOOST_TEST((col - row).shape() == (Shape{2, 3}));
  Tensor s = Tensor::scalar(2.f);
  check_close((a / s).to_vector(), {0.5f, 1, 1.5f, 2, 2.5f, 3}, 0, "a/s");
}

BOOST_AUTO_TEST_CASE(broadcast_error_names_shapes) {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({4});
  try {
    add(a, b);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    BOOST_TEST(m.find("add") != std::string::npos);
    BOOST_TEST(m.find("[2, 3]") != std::string::npos);
    BOOST_TEST(m.find("[4]") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(round_half_to_even) {
  Tensor x = Tensor::from_vector({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, 2.6f}, {7});
  check_close(round(x).to_vector(), {0, 2, 2, -0, -2, 2, 3}, 0, "round");
}

BOOST_AUTO_TEST_CASE(unary_values) {
  Tensor x = Tensor::from_vector({-2.f, -0.5f, 0.f, 3.f, 7.f}, {5});
  check_close(relu(x).to_vector(), {0, 0, 0, 3, 7}, 0, "relu");
  check_close(relu6(x).to_vector(), {0, 0, 0, 3, 6}, 0, "relu6");
  check_close(sign(x).to_vector(), {-1, -1, 0, 1, 1}, 0, "sign");
  check_close(clamp(x, -1.f, 2.f).to_vector(), {-1, -0.5f, 0, 2, 2}, 0, "clamp");
  check_close(abs(x).to_vector(), {2, 0.5f, 0, 3, 7}, 0, "abs");
  // gelu(1) = 0.5 * (1 + erf(1/sqrt 2)) = 0.841344746
  check_close(gelu(Tensor::from_vector({1.f}, {1})).to_vector(), {0.841344746f}, 1e-6, "gelu");
}

BOOST_AUTO_TEST_CASE(reshape_is_view_and_checks) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = a.reshape({3, -1});
  BOOST_TEST(r.shape() == (Shape{3, 2}));
  BOOST_TEST(r.shares_storage(a));
  BOOST_CHECK_THROW(a.reshape({4, 2}), Error);
  Tensor f = Tensor::zeros({2, 3, 4, 5}).flatten(1);
  BOOST_TEST(f.shape() == (Shape{2, 60}));
}

BOOST_AUTO_TEST_CASE(permute_transpose_values) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  check_close(a.transpose(0, 1).to_vector(), {1, 4, 2, 5, 3, 6}, 0, "transpose");
  Tensor b = Tensor::arange(24).reshape({2, 3, 4});
  Tensor p = b.permute({2, 0, 1});
  BOOST_TEST(p.shape() == (Shape{4, 2, 3}));
  // p[i][j][k] = b[j][k][i] = j*12 + k*4 + i
  std::vector<float> v = p.to_vector();
  BOOST_TEST(v[1 * 6 + 1 * 3 + 2] == 1 * 12 + 2 * 4 + 1);
}

BOOST_AUTO_TEST_CASE(slice_cat_stack_values) {
  Tensor a = Tensor::arange(12).reshape({3, 4});
  check_close(slice(a, 1, 1, 3).to_vector(), {1, 2, 5, 6, 9, 10}, 0, "slice dim1");
  check_close(slice(a, 0, 1, 3).to_vector(), {4, 5, 6, 7, 8, 9, 10, 11}, 0, "slice dim0");
  check_close(slice(a, 1, 0, 4, 2).to_vector(), {0, 2, 4, 6, 8, 10}, 0, "slice step");
  check_close(slice(a, 1, -1, 4).to_vector(), {3, 7, 11}, 0, "slice negative");
  Tensor c = cat({Tensor::from_vector({1, 2}, {1, 2}), Tensor::from_vector({3, 4, 5, 6}, {2, 2})}, 0);
  check_close(c.to_vector(), {1, 2, 3, 4, 5, 6}, 0, "cat0");
  Tensor d = cat({Tensor::from_vector({1, 2}, {2, 1}), Tensor::from_vector({3, 4, 5, 6}, {2, 2})}, 1);
  check_close(d.to_vector(), {1, 3, 4, 2, 5, 6}, 0, "cat1");
  Tensor s = stack({Tensor::from_vector({1, 2}, {2}), Tensor::from_vector({3, 4}, {2})}, 1);
  BOOST_TEST(s.shape() == (Shape{2, 2}));
  check_close(s.to_vector(), {1, 3, 2, 4}, 0, "stack");
  BOOST_CHECK_THROW(cat({Tensor::zeros({2, 2}), Tensor::zeros({2, 3})}, 0), Error);
}

BOOST_AUTO_TEST_CASE(reductions_values) {
  Tensor a = Tensor::from_vector({1, 5, 3, 4, 2, 6}, {2, 3});
  BOOST_TEST(sum(a).item() == 21.f);
  BOOST_TEST(mean(a).item() == 3.5f);
  check_close(sum(a, {0}).to_vector(), {5, 7, 9}, 0, "sum0");
  check_close(mean(a, {1}, true).to_vector(), {3, 4}, 0, "mean1");
  BOOST_TEST(mean(a, {1}, true).shape() == (Shape{2, 1}));
  check_close(max(a, 1).to_vector(), {5, 6}, 0, "max1");
  check_close(min(a, 0).to_vector(), {1, 2, 3}, 0, "min0");
  BOOST_TEST(argmax(a, 1).to_vector_i64() == (std::vector<int64_t>{1, 2}));
  check_close(kthvalue(a, 2, 1).to_vector(), {3, 4}, 0, "kth");
  TopK t = topk(a, 2, 1, true);
  check_close(t.values.to_vector(), {5, 3, 6, 4}, 0, "topk");
  BOOST_TEST(t.indices.to_vector_i64() == (std::vector<int64_t>{1, 2, 2, 0}));
  // Ties: the lower index comes first.
  TopK u = topk(Tensor::from_vector({1, 1, 1}, {3}), 2, 0, false);
  BOOST_TEST(u.indices.to_vector_i64() == (std::vector<int64_t>{0, 1}));
}

BOOST_AUTO_TEST_CASE(where_and_masked_fill) {
  Tensor c = Tensor::from_vector({1, 0, 1}, {3});
  Tensor a = Tensor::from_vector({1, 2, 3}, {3});
  Tensor b = Tensor::from_vector({-1, -2, -3}, {3});
  check_close(where(c, a, b).to_vector(), {1, -2, 3}, 0, "where");
  check_close(masked_fill(a, c, 9.f).to_vector(), {9, 2, 9}, 0, "masked_fill");
}

BOOST_AUTO_TEST_CASE(softmax_and_losses_values) {
  Tensor x = Tensor::from_vector({1, 2, 3}, {1, 3});
  // softmax([1,2,3]) = [0.09003057, 0.24472847, 0.66524096]
  check_close(softmax(x, 1).to_vector(), {0.09003057f, 0.24472847f, 0.66524096f}, 1e-6, "softmax");
  check_close(log_softmax(x, -1).to_vector(), {-2.40760596f, -1.40760596f, -0.40760596f}, 1e-6,
              "log_softmax");
  Tensor target = Tensor::from_vector_i64({2}, {1});
  BOOST_TEST(cross_entropy(x, target).item() == 0.40760596f, boost::test_tools::tolerance(1e-6f));
  Tensor y = Tensor::from_vector({0, 0, 0}, {1, 3});
  BOOST_TEST(mse_loss(x, y).item() == 14.f / 3.f, boost::test_tools::tolerance(1e-6f));
  // kl_div(log q, p) with p = [0.5, 0.5, 0], q = [0.25, 0.25, 0.5]: sum p log(p/q) = log 2
  Tensor logq = log(Tensor::from_vector({0.25f, 0.25f, 0.5f}, {1, 3}));
  Tensor p = Tensor::from_vector({0.5f, 0.5f, 0.f}, {1, 3});
  BOOST_TEST(kl_div(logq, p, Reduction::Sum).item() == 0.69314718f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(kl_div(logq, p, Reduction::BatchMean).item() == 0.69314718f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(cross_entropy_ignore_index) {
  Tensor x = Tensor::from_vector({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor t = Tensor::from_vector_i64({2, -100}, {2});
  BOOST_TEST(cross_entropy(x, t).item() == 0.40760596f, boost::test_tools::tolerance(1e-6f));
  BOOST_CHECK_THROW(cross_entropy(x, Tensor::from_vector_i64({3, 0}, {2})), Error);
}

BOOST_AUTO_TEST_CASE(conv2d_hand_computed) {
  // 1x1x3x3 input, 1x1x2x2 weight of ones, stride 1, no padding: sums of 2x2 windows.
  Tensor x = Tensor::arange(9).reshape({1, 1, 3, 3});
  Tensor w = Tensor::ones({1, 1, 2, 2});
  Tensor y = conv2d(x, w, Tensor::from_vector({1}, {1}), {});
  check_close(y.to_vector(), {9, 13, 21, 25}, 0, "conv");
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  o.stride_h = o.stride_w = 2;
  Tensor y2 = conv2d(x, w, Tensor(), o);  // windows at (-1,-1),(−1,1),(1,−1),(1,1)
  check_close(y2.to_vector(), {0, 1 + 2, 3 + 6, 4 + 5 + 7 + 8}, 0, "conv pad stride");
  BOOST_CHECK_THROW(conv2d(x, Tensor::ones({1, 2, 2, 2}), Tensor(), {}), Error);
}

BOOST_AUTO_TEST_CASE(pooling_hand_computed) {
  Tensor x = Tensor::arange(16).reshape({1, 1, 4, 4});
  check_close(max_pool2d(x, 2, 2).to_vector(), {5, 7, 13, 15}, 0, "maxpool");
  check_close(avg_pool2d(x, 2, 2).to_vector(), {2.5f, 4.5f, 10.5f, 12.5f}, 0, "avgpool");
  check_close(adaptive_avg_pool2d(x, 1, 1).to_vector(), {7.5f}, 0, "adaptive 1");
  // 4 -> 3 adaptive windows: [0,2), [1,3), [2,4)
  Tensor r = adaptive_avg_pool2d(Tensor::arange(4).reshape({1, 1, 1, 4}), 1, 3);
  check_close(r.to_vector(), {0.5f, 1.5f, 2.5f}, 0, "adaptive 3");
}

// Max pooling 2x2 with NaN (PyTorch's rule: a NaN in a window wins it, and the gradient goes to
// it). Planes of 6x6 = 36 values: two 16-lane blocks and a tail for the NaN pre-check; channel 0
// has no NaN (the branch-free path), channel 1 one NaN in a lane block, channel 2 one in the tail.
BOOST_AUTO_TEST_CASE(max_pool_nan_in_lanes_and_tail) {
  std::vector<float> v(3 * 36);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7) % 36);
  v[36 + 8] = NAN;       // channel 1, row 1, column 2: window (0, 1)
  v[72 + 35] = NAN;      // channel 2, row 5, column 5: window (2, 2), index 35 is past 32
  Tensor x = Tensor::from_vector(v, {1, 3, 6, 6}).set_requires_grad(true);
  Tensor y = max_pool2d(x, 2, 2);
  const std::vector<float> out = y.to_vector();
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        float best = v[ch * 36 + (2 * i) * 6 + 2 * j];
        for (int64_t a = 0; a < 2; ++a)
          for (int64_t b = 0; b < 2; ++b) {
            const float t = v[ch * 36 + (2 * i + a) * 6 + 2 * j + b];
            if (t > best || t != t) best = t;
          }
        const float got = out[ch * 9 + i * 3 + j];
        if (best != best) BOOST_TEST(std::isnan(got), "channel " << ch << " window " << i << "," << j);
        else BOOST_TEST(got == best, "channel " << ch << " window " << i << "," << j);
      }
  BOOST_TEST(std::isnan(out[9 + 1]));
  BOOST_TEST(std::isnan(out[18 + 8]));
  sum(y).backward();
  const std::vector<float> g = x.grad().to_vector();
  BOOST_TEST(g[36 + 8] == 1.f);   // the NaN took its window's gradient
  BOOST_TEST(g[72 + 35] == 1.f);
}

BOOST_AUTO_TEST_CASE(batch_norm_training_updates_running_stats) {
  Tensor x = Tensor::from_vector({1, 2, 3, 5}, {4, 1});
  Tensor rm = Tensor::zeros({1}), rv = Tensor::ones({1});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1f, 0.f);
  // mean 2.75, biased var = (3.0625+0.5625+0.0625+5.0625)/4 = 2.1875, unbiased 2.916667
  BOOST_TEST(rm.item() == 0.275f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(rv.item() == 0.9f + 0.2916667f, boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(y.to_vector()[0] == (1 - 2.75f) / std::sqrt(2.1875f), boost::test_tools::tolerance(1e-5f));
}

// Statistics over [2, 2, 3, 5] rows (inner 15, several rows per channel) against a direct
// two-pass computation in double; a NaN in one channel makes that channel's mean and variance
// NaN (as in PyTorch) and leaves the other channel alone.
BOOST_AUTO_TEST_CASE(batch_norm_statistics_per_channel_and_nan) {
  Tensor x = shrink::testing::seeded_randn({2, 2, 3, 5}, 31);
  x = add(x, Tensor::from_vector({100.f, -3.f}, {1, 2, 1, 1}));  // large offset: cancellation
  const std::vector<float> xv = x.to_vector();
  Tensor rm = Tensor::zeros({2}), rv = Tensor::zeros({2});
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 1.f, 0.f);  // momentum 1: running = batch
  for (int64_t ch = 0; ch < 2; ++ch) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 15; ++i) s += xv[(n * 2 + ch) * 15 + i];
    const double m = s / 30;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 15; ++i) ss += std::pow(xv[(n * 2 + ch) * 15 + i] - m, 2);
    BOOST_TEST(rm.to_vector()[ch] == m, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(rv.to_vector()[ch] == ss / 29, boost::test_tools::tolerance(1e-4));  // unbiased
  }
  std::vector<float> with_nan = xv;
  with_nan[17] = NAN;  // image 0, channel 1
  Tensor rm2 = Tensor::zeros({2}), rv2 = Tensor::zeros({2});
  batch_norm(Tensor::from_vector(with_nan, {2, 2, 3, 5}), Tensor(), Tensor(), rm2, rv2, true, 1.f,
             0.f);
  BOOST_TEST(std::isnan(rm2.to_vector()[1]));
  BOOST_TEST(std::isnan(rv2.to_vector()[1]));
  BOOST_TEST(rv2.to_vector()[0] == rv.to_vector()[0]);
}

BOOST_AUTO_TEST_CASE(matmul_and_linear_values) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({1, 0, 0, 1, 1, 1}, {3, 2});
  check_close(matmul(a, b).to_vector(), {4, 5, 10, 11}, 0, "matmul");
  Tensor w = Tensor::from_vector({1, 1, 1, 0, 0, 1}, {2, 3});
  check_close(linear(a, w, Tensor::from_vector({1, -1}, {2})).to_vector(), {7, 2, 16, 5}, 0, "linear");
  BOOST_CHECK_THROW(linear(a, Tensor::zeros({2, 4})), Error);
}

BOOST_AUTO_TEST_CASE(embedding_values_and_range) {
  Tensor w = Tensor::arange(6).reshape({3, 2});
  Tensor idx = Tensor::from_vector_i64({2, 0}, {2});
  check_close(embedding(w, idx).to_vector(), {4, 5, 0, 1}, 0, "embedding");
  BOOST_CHECK_THROW(embedding(w, Tensor::from_vector_i64({3}, {1})), Error);
}

BOOST_AUTO_TEST_CASE(dropout_scales_and_is_seeded) {
  Generator g1(7), g2(7);
  Tensor x = Tensor::ones({1000});
  Tensor a = dropout(x, 0.25f, true, g1), b = dropout(x, 0.25f, true, g2);
  BOOST_TEST(a.to_vector() == b.to_vector());
  int kept = 0;
  for (float v : a.to_vector()) {
    BOOST_TEST((v == 0.f || std::fabs(v - 1.f / 0.75f) < 1e-6f));
    kept += v != 0.f;
  }
  BOOST_TEST(kept > 650);
  BOOST_TEST(kept < 850);
  BOOST_TEST(dropout(x, 0.25f, false, g1).is_same(x));
}

// Sums over every subset of dims of a [3, 5, 2, 300] tensor (adjacent runs merged into one
// reduction, rows longer than the 256-column block, inner size 1) against double loops.
BOOST_AUTO_TEST_CASE(sum_and_mean_over_dim_subsets) {
  const Shape shape{3, 5, 2, 300};
  Tensor x = shrink::testing::seeded_randn(shape, 21);
  const std::vector<float> xv = x.to_vector();
  for (int mask = 1; mask < 16; ++mask) {
    std::vector<int64_t> dims;
    Shape out_shape = shape;
    for (int64_t d = 0; d < 4; ++d)
      if (mask & (1 << d)) dims.push_back(d), out_shape[d] = 1;
    std::vector<double> want(Tensor::zeros(out_shape).numel(), 0.0);
    int64_t count = 1;
    for (int64_t d : dims) count *= shape[d];
    for (int64_t a = 0; a < 3; ++a)
      for (int64_t b = 0; b < 5; ++b)
        for (int64_t c = 0; c < 2; ++c)
          for (int64_t e = 0; e < 300; ++e) {
            const int64_t i[4] = {a, b, c, e};
            int64_t o = 0;
            for (int64_t d = 0; d < 4; ++d) o = o * out_shape[d] + (mask & (1 << d) ? 0 : i[d]);
            want[o] += xv[((a * 5 + b) * 2 + c) * 300 + e];
          }
    const std::vector<float> got = sum(x, dims, true).to_vector();
    const std::vector<float> got_mean = mean(x, dims, true).to_vector();
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      BOOST_CHECK_MESSAGE(std::fabs(got[k] - want[k]) <= 1e-5 * (1 + std::fabs(want[k])),
                          "sum mask " << mask << " [" << k << "]: " << got[k] << " vs " << want[k]);
      BOOST_CHECK_MESSAGE(std::fabs(got_mean[k] - want[k] / count) <= 1e-6,
                          "mean mask " << mask << " [" << k << "]");
    }
  }
}

// Reductions over every subset of dims of a shape with size-1 dims between the others (they are
// dropped and neighbours merged before the passes): sum, L1 and L2 norms against double loops.
BOOST_AUTO_TEST_CASE(sums_and_norms_with_size_one_dims_between) {
  const Shape shape{3, 1, 4, 1, 2, 33};
  const int64_t rank = 6;
  Tensor x = shrink::testing::seeded_randn(shape, 22);
  const std::vector<float> xv = x.to_vector();
  for (int mask = 1; mask < (1 << rank); ++mask) {
    std::vector<int64_t> dims;
    Shape out_shape = shape;
    for (int64_t d = 0; d < rank; ++d)
      if (mask & (1 << d)) dims.push_back(d), out_shape[d] = 1;
    const int64_t out_n = shape_numel(out_shape);
    std::vector<double> want_sum(out_n, 0.0), want_l1(out_n, 0.0), want_sq(out_n, 0.0);
    for (int64_t flat = 0; flat < x.numel(); ++flat) {
      int64_t rem = flat, o = 0, stride = 1;
      for (int64_t d = rank - 1; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        if (!(mask & (1 << d))) o += i * stride;
        stride *= out_shape[d];
      }
      const double v = xv[flat];
      want_sum[o] += v;
      want_l1[o] += std::fabs(v);
      want_sq[o] += v * v;
    }
    const std::vector<float> got_sum = sum(x, dims, true).to_vector();
    const std::vector<float> got_l1 = norm(x, 1, dims, true).to_vector();
    const std::vector<float> got_l2 = norm(x, 2, dims, true).to_vector();
    BOOST_REQUIRE_EQUAL(got_sum.size(), static_cast<size_t>(out_n));
    BOOST_REQUIRE(norm(x, 2, dims).shape() == sum(x, dims).shape());
    for (int64_t k = 0; k < out_n; ++k) {
      BOOST_CHECK_MESSAGE(std::fabs(got_sum[k] - want_sum[k]) <= 1e-5 * (1 + std::fabs(want_sum[k])),
                          "sum mask " << mask << " [" << k << "]: " << got_sum[k] << " vs " << want_sum[k]);
      BOOST_CHECK_MESSAGE(std::fabs(got_l1[k] - want_l1[k]) <= 1e-5 * (1 + want_l1[k]), "l1 mask " << mask);
      BOOST_CHECK_MESSAGE(std::fabs(got_l2[k] - std::sqrt(want_sq[k])) <= 1e-5 * (1 + std::sqrt(want_sq[k])),
                          "l2 mask " << mask);
    }
  }
  // Reducing only size-1 dims: |x| and |x| again (a copy, not a view of x).
  Tensor l1 = norm(x, 1, {1, 3}, true);
  BOOST_TEST(l1.data<float>() != x.data<float>());
  BOOST_TEST(l1.to_vector() == abs(x).to_vector(), boost::test_tools::per_element());
  BOOST_CHECK_THROW(norm(x, 3, {0}), Error);
}

BOOST_AUTO_TEST_CASE(copy_broadcast_into_place) {
  Tensor dst = Tensor::zeros({2, 3, 2});
  const float* before = dst.data<float>();
  dst.copy_broadcast_(Tensor::from_vector({1.f, 2.f, 3.f}, {3, 1}));
  BOOST_TEST(dst.data<float>() == before);
  BOOST_TEST(dst.to_vector() == (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}),
             boost::test_tools::per_element());
  BOOST_CHECK_THROW(dst.copy_broadcast_(Tensor::zeros({2, 2})), Error);
  // copy_ itself stays strict: a shape mismatch is an error, not a broadcast.
  BOOST_CHECK_THROW(dst.copy_(Tensor::zeros({3, 1})), Error);
  // A source inside the destination's own storage is read before anything is written.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  x.copy_broadcast_(slice(reshape(x, {6}), 0, 3, 6));  // the second row, a view of x
  BOOST_TEST(x.to_vector() == (std::vector<float>{4, 5, 6, 4, 5, 6}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(permute_moving_only_size_one_dims_is_a_view) {
  Tensor x = shrink::testing::seeded_randn({3, 1, 4, 1}, 23);
  Tensor y = permute(x, {1, 0, 3, 2});  // [1, 3, 1, 4]: same data order
  BOOST_TEST(y.shape() == (Shape{1, 3, 1, 4}), boost::test_tools::per_element());
  BOOST_TEST(y.data<float>() == x.data<float>());
  Tensor z = permute(x, {2, 1, 0, 3});  // [4, 1, 3, 1]: a real transpose, copied
  BOOST_TEST(z.data<float>() != x.data<float>());
  const std::vector<float> xv = x.to_vector(), zv = z.to_vector();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) BOOST_TEST(zv[j * 3 + i] == xv[i * 4 + j]);
}

// Broadcast binary ops and expand over index spaces whose dims merge (simplify_index_space)
// against a naive loop.
BOOST_AUTO_TEST_CASE(broadcast_runs_over_merged_dims) {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{{5, 1, 1, 1}, {5, 3, 2, 4}}, {{1, 3, 1, 4}, {2, 3, 5, 4}}, {{2, 1, 3}, {1, 4, 1}},
                        {{4, 6}, {1}}, {{1, 1, 7}, {3, 1, 7}}};
  for (const Case& c : cases) {
    Tensor a = shrink::testing::seeded_randn(c.a, 24), b = shrink::testing::seeded_randn(c.b, 25);
    const Shape out = broadcast_shapes(c.a, c.b, "test");
    const std::vector<int64_t> sa = broadcast_strides(c.a, out, "test"), sb = broadcast_strides(c.b, out, "test");
    const std::vector<float> av = a.to_vector(), bv = b.to_vector(), got = sub(a, b).to_vector();
    const std::vector<float> expanded = expand(a, out).to_vector();
    for (int64_t flat = 0; flat < shape_numel(out); ++flat) {
      int64_t rem = flat, ia = 0, ib = 0;
      for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
        const int64_t i = rem % out[d];
        rem /= out[d];
        ia += i * sa[d];
        ib += i * sb[d];
      }
      BOOST_TEST(got[flat] == av[ia] - bv[ib]);
      BOOST_TEST(expanded[flat] == av[ia]);
    }
  }
}

// Large blocks come back for a request of the same size (no fresh pages); small ones go to the heap.
// (Which cached block serves the request depends on what earlier tests left: only the counts and
// the contents are checked.)
BOOST_AUTO_TEST_CASE(large_host_blocks_are_reused) {
  const size_t block = size_t{12} << 20;
  { Tensor big = Tensor::full({3, 1 << 20}, 2.f); }  // 12 MiB, freed into the cache
  const size_t cached = cpu::host_cached_bytes();
  BOOST_TEST(cached >= block);
  Tensor again = Tensor::zeros({3, 1 << 20});
  BOOST_TEST(cpu::host_cached_bytes() <= cached - block);  // taken out of the cache
  BOOST_TEST(cpu::host_cached_bytes() + block + block / 8 >= cached);  // a block within 1/8
  BOOST_TEST(sum(again).item() == 0.f);  // handed out as any new tensor: zeros() still fills
}

// snapshot(): the same data until an in-place write (copy_, copy_broadcast_, fill_) through any
// tensor on either side; then the snapshot side gets its own copy. Views and detached handles
// follow their side; with no snapshot alive, writes stay in place.
BOOST_AUTO_TEST_CASE(snapshot_is_copy_on_write) {
  using V = std::vector<float>;
  Tensor t = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  const float* data = t.data<float>();
  Tensor s = t.snapshot();
  Tensor s_view = reshape(s, {4});  // a view of the snapshot, taken before any write
  BOOST_TEST(s.data<float>() == data);  // nothing copied yet
  t.copy_(Tensor::from_vector({5, 6, 7, 8}, {2, 2}));
  BOOST_TEST(t.data<float>() == data);  // written in place; the snapshot took a copy
  BOOST_TEST(s.to_vector() == (V{1, 2, 3, 4}), boost::test_tools::per_element());
  BOOST_TEST(s_view.to_vector() == (V{1, 2, 3, 4}), boost::test_tools::per_element());
  BOOST_TEST(t.to_vector() == (V{5, 6, 7, 8}), boost::test_tools::per_element());
  // Every handle to t, detached ones and views included, sees writes through any of them.
  Tensor s2 = t.snapshot();
  Tensor alias = t.detach(), row = slice(t, 0, 1, 2);
  alias.copy_broadcast_(Tensor::from_vector({0, 1}, {2}));
  BOOST_TEST(t.to_vector() == (V{0, 1, 0, 1}), boost::test_tools::per_element());
  BOOST_TEST(s2.to_vector() == (V{5, 6, 7, 8}), boost::test_tools::per_element());
  row.fill_(9.f);
  BOOST_TEST(t.to_vector() == (V{0, 1, 9, 9}), boost::test_tools::per_element());
  // Writing a snapshot (or a view of it) changes the snapshot side only.
  Tensor s3 = t.snapshot(), s3_view = reshape(s3, {4}), s3_twice = s3.snapshot();
  slice(s3_view, 0, 0, 2).fill_(-1.f);
  BOOST_TEST(s3.to_vector() == (V{-1, -1, 9, 9}), boost::test_tools::per_element());
  BOOST_TEST(t.to_vector() == (V{0, 1, 9, 9}), boost::test_tools::per_element());
  BOOST_TEST(s3_twice.to_vector() == (V{0, 1, 9, 9}), boost::test_tools::per_element());
  // t.copy_(its own snapshot) and the snapshot of an offset view.
  Tensor old = t.snapshot();
  t.fill_(2.f);
  t.copy_(old);
  BOOST_TEST(t.to_vector() == (V{0, 1, 9, 9}), boost::test_tools::per_element());
  Tensor second_row = slice(t, 0, 1, 2).snapshot();
  t.fill_(0.f);
  BOOST_TEST(second_row.to_vector() == (V{9, 9}), boost::test_tools::per_element());
  // Once the snapshots are gone, a write stays in place.
  s = s_view = s2 = s3 = s3_view = s3_twice = old = second_row = Tensor();
  const float* now = t.data<float>();
  t.fill_(3.f);
  BOOST_TEST(t.data<float>() == now);
}

BOOST_AUTO_TEST_SUITE_END()
