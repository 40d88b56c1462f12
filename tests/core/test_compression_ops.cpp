// apply_mask and fake_quantize: values against hand-computed expectations, the straight-through
// gradients analytically (their defining property), apply_mask numerically.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>

#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;
using shrink::testing::check_close;

BOOST_AUTO_TEST_SUITE(compression_ops)

BOOST_AUTO_TEST_CASE(mask_mul_and_add_values) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row_mask = Tensor::from_vector({1, 0, 1}, {3});
  check_close(apply_mask(x, row_mask).to_vector(), {1, 0, 3, 4, 0, 6}, 0, "mul");
  check_close(apply_mask(x, row_mask, MaskMethod::Add).to_vector(), {1, -998, 3, 4, -995, 6}, 0,
              "add");
  BOOST_CHECK_THROW(apply_mask(x, Tensor::ones({4})), Error);
  BOOST_TEST(apply_mask(x, row_mask).grad_fn() == nullptr);  // no grad needed, no node
}

BOOST_AUTO_TEST_CASE(mask_gradients) {
  Tensor mask = Tensor::from_vector({1, 0, 0, 1, 1, 0}, {2, 3});
  shrink::testing::check_gradients([mask](const std::vector<Tensor>& v) { return apply_mask(v[0], mask); },
                                   {shrink::testing::seeded_randn({2, 3}, 1)});
  shrink::testing::check_gradients(
      [mask](const std::vector<Tensor>& v) { return apply_mask(v[0], mask, MaskMethod::Add); },
      {shrink::testing::seeded_randn({2, 3}, 2)});
  Tensor x = Tensor::ones({2, 3}).set_requires_grad(true);
  sum(apply_mask(x, mask)).backward();
  check_close(x.grad().to_vector(), {1, 0, 0, 1, 1, 0}, 0, "g * mask");
}

BOOST_AUTO_TEST_CASE(fake_quant_values_per_tensor) {
  // s = 0.5, z = 10, int8 [-127, 127]: q = 10 + x/0.5, rounded half to even, back (q - 10) * 0.5.
  Tensor x = Tensor::from_vector({0.f, 0.25f, 0.75f, 1.3f, -3.f, 100.f, -100.f}, {7});
  Tensor s = Tensor::scalar(0.5f), z = Tensor::scalar(10.f);
  // 0.25/0.5 = 0.5 -> 10.5 -> 10 (even) -> 0; 0.75 -> 11.5 -> 12 -> 1.0; 1.3 -> 12.6 -> 13 -> 1.5
  // -3 -> 4 -> -3; 100 -> 210 -> 127 -> 58.5; -100 -> -190 -> -127 -> -68.5
  check_close(fake_quantize(x, s, z, -127, 127, false).to_vector(),
              {0.f, 0.f, 1.f, 1.5f, -3.f, 58.5f, -68.5f}, 0, "fake quant");
}

BOOST_AUTO_TEST_CASE(fake_quant_per_channel_broadcast) {
  Tensor x = Tensor::from_vector({1.f, 2.f, 3.f, 1.f, 2.f, 3.f}, {2, 3});
  Tensor s = Tensor::from_vector({1.f, 2.f}, {2, 1}), z = Tensor::zeros({2, 1});
  // row 1: x/2 = 0.5, 1, 1.5 -> 0, 1, 2 -> 0, 2, 4
  check_close(fake_quantize(x, s, z, -127, 127, false).to_vector(), {1, 2, 3, 0, 2, 4}, 0, "per channel");
  BOOST_CHECK_THROW(fake_quantize(x, Tensor::ones({3, 1}), Tensor::zeros({3, 1}), -127, 127, false), Error);
}

BOOST_AUTO_TEST_CASE(straight_through_gradients) {
  Tensor s = Tensor::scalar(1.f), z = Tensor::scalar(0.f);
  for (bool clip : {false, true}) {
    Tensor x = Tensor::from_vector({-5.f, -2.f, 0.3f, 2.f, 5.f}, {5}).set_requires_grad(true);
    Tensor g = Tensor::from_vector({1, 2, 3, 4, 5}, {5});
    sum(mul(fake_quantize(x, s, z, -2, 2, clip), g)).backward();
    // clamp_round passes the gradient everywhere; qat_clamp_round zeroes it outside [qmin, qmax]
    // (|x| = 2 is on the boundary, inside).
    std::vector<float> want = clip ? std::vector<float>{0, 2, 3, 4, 0} : std::vector<float>{1, 2, 3, 4, 5};
    check_close(x.grad().to_vector(), want, 0, clip ? "qat" : "ste");
  }
  // Nothing clipped: the op knows the gradient is g itself (no backward pass), same values.
  Tensor x = Tensor::from_vector({-1.5f, 0.3f, 2.f}, {3}).set_requires_grad(true);
  sum(mul(fake_quantize(x, s, z, -2, 2, true), Tensor::from_vector({1, 2, 3}, {3}))).backward();
  check_close(x.grad().to_vector(), {1, 2, 3}, 0, "qat, all in range");
}

namespace {
QuantArgs args(QuantMethod m, float qmin, float qmax, float grad_scale = 1.f) {
  QuantArgs q;
  q.method = m;
  q.qmin = qmin;
  q.qmax = qmax;
  q.grad_scale = grad_scale;
  return q;
}
// d sum(g * y) / d {x, s, z} for one fake_quantize call.
struct Grads {
  std::vector<float> y, gx, gs, gz;
};
Grads run(const QuantArgs& q, const std::vector<float>& xv, float sv, float zv, const std::vector<float>& gv) {
  Tensor x = Tensor::from_vector(xv, {static_cast<int64_t>(xv.size())}).set_requires_grad(true);
  Tensor s = Tensor::scalar(sv).set_requires_grad(true), z = Tensor::scalar(zv).set_requires_grad(true);
  Tensor y = fake_quantize(x, s, z, q);
  sum(mul(y, Tensor::from_vector(gv, {static_cast<int64_t>(gv.size())}))).backward();
  auto grad = [](const Tensor& t) { return t.grad().defined() ? t.grad().to_vector() : std::vector<float>{0.f}; };
  return {y.to_vector(), grad(x), grad(s), grad(z)};
}
}  // namespace

// LSQ (Esser et al. 2020), s = 0.5, [-4, 4], grad scale 0.25. v = x/s:
//   x = 0.3 -> v 0.6 -> round 1 -> y 0.5;  dy/ds = round(v) - v = 0.4
//   x = 1.25 -> v 2.5 -> round 2 (even) -> y 1.0; dy/ds = -0.5
//   x = 3 -> v 6 -> clamped 4 -> y 2.0; dy/dx = 0, dy/ds = qmax = 4
//   x = -3 -> v -6 -> -4 -> y -2.0; dy/ds = qmin = -4
BOOST_AUTO_TEST_CASE(lsq_values_and_gradients) {
  Grads r = run(args(QuantMethod::Lsq, -4, 4, 0.25f), {0.3f, 1.25f, 3.f, -3.f}, 0.5f, 7.f, {1, 2, 3, 4});
  check_close(r.y, {0.5f, 1.f, 2.f, -2.f}, 1e-7, "lsq y (z is ignored)");
  check_close(r.gx, {1, 2, 0, 0}, 0, "lsq dx");
  const double want_s = 0.25 * (1 * 0.4 + 2 * -0.5 + 3 * 4 + 4 * -4);
  check_close(r.gs, {static_cast<float>(want_s)}, 1e-6, "lsq ds");
  check_close(r.gz, {0.f}, 0, "lsq has no zero-point gradient");
}

// LSQ+ (Bhalgat et al. 2020), s = 0.5, z = 1, [0, 6], grad scale 0.5. v = x/s + z:
//   x = 0.3 -> v 1.6 -> 2 -> y 0.5;  ds = round(v) - v = 0.4; dz 0
//   x = -1 -> v -1 -> clamped 0 -> y -0.5; dx 0; ds = qmin - z = -1; dz = -s = -0.5
//   x = 4 -> v 9 -> 6 -> y 2.5; ds = qmax - z = 5; dz = -0.5
BOOST_AUTO_TEST_CASE(lsq_plus_values_and_gradients) {
  Grads r = run(args(QuantMethod::LsqPlus, 0, 6, 0.5f), {0.3f, -1.f, 4.f}, 0.5f, 1.f, {1, 2, 3});
  check_close(r.y, {0.5f, -0.5f, 2.5f}, 1e-7, "lsq+ y");
  check_close(r.gx, {1, 0, 0}, 0, "lsq+ dx");
  check_close(r.gs, {static_cast<float>(0.5 * (1 * 0.4 + 2 * -1.0 + 3 * 5.0))}, 1e-6, "lsq+ ds");
  check_close(r.gz, {static_cast<float>(2 * -0.5 + 3 * -0.5)}, 1e-7, "lsq+ dz (no grad scale)");
}

// Where the fake quantizer is clipped it is smooth in s and z (y = (qmax - z) * s), so central
// differences must agree with the STE formulas there.
BOOST_AUTO_TEST_CASE(lsq_clipped_region_matches_finite_differences) {
  const Tensor x = Tensor::from_vector({9.f, -9.f}, {2});
  auto lsq = [x](const std::vector<Tensor>& v) {
    return fake_quantize(x, v[0], Tensor::scalar(0.f), args(QuantMethod::Lsq, -3, 5));
  };
  shrink::testing::check_gradients(lsq, {Tensor::scalar(0.7f)});
  auto lsq_plus = [x](const std::vector<Tensor>& v) {
    return fake_quantize(x, v[0], v[1], args(QuantMethod::LsqPlus, -3, 5));
  };
  shrink::testing::check_gradients(lsq_plus, {Tensor::scalar(0.7f), Tensor::scalar(0.4f)});
}

BOOST_AUTO_TEST_CASE(dorefa_output_and_bnn) {
  // DoReFa output: clamp to [0, 1], then clamp_round with s = 1/3 (2 bits), z = 0.
  Grads d = run(args(QuantMethod::DoReFaOutput, 0, 3), {-0.5f, 0.2f, 0.5f, 1.f, 1.5f}, 1.f / 3.f, 0.f, {1, 2, 3, 4, 5});
  check_close(d.y, {0.f, 1.f / 3.f, 2.f / 3.f, 1.f, 1.f}, 1e-6, "dorefa output (0.5 -> 1.5 -> 2, even)");
  check_close(d.gx, {0, 2, 3, 4, 0}, 0, "dorefa output dx: the clamp's gradient");
  Grads b = run(args(QuantMethod::Bnn, 0, 0), {-2.f, -0.5f, 0.f, 0.5f, 2.f}, 1.f, 0.f, {1, 2, 3, 4, 5});
  check_close(b.y, {-1, -1, 1, 1, 1}, 0, "bnn: sign with sign(0) = +1");
  check_close(b.gx, {1, 2, 3, 4, 5}, 0, "bnn weight: straight through");
  Grads o = run(args(QuantMethod::BnnOutput, 0, 0), {-2.f, -1.f, 0.f, 1.f, 2.f}, 1.f, 0.f, {1, 2, 3, 4, 5});
  check_close(o.gx, {0, 2, 3, 4, 0}, 0, "bnn output: zero where |x| > 1");
  // v1 NaiveQuantizer: x / s cast to an integer (toward zero), times s.
  Grads t = run(args(QuantMethod::Truncate, -127, 127), {-1.9f, -0.6f, 0.6f, 1.9f}, 0.5f, 0.f, {1, 2, 3, 4});
  check_close(t.y, {-1.5f, -0.5f, 0.5f, 1.5f}, 0, "truncate: -3.8 -> -3, -1.2 -> -1, 1.2 -> 1, 3.8 -> 3");
  check_close(t.gx, {1, 2, 3, 4}, 0, "truncate: straight through");
}

BOOST_AUTO_TEST_CASE(lsq_per_channel_scale_gradient_sums_per_channel) {
  Tensor x = Tensor::from_vector({0.3f, 9.f, 0.3f, 9.f}, {2, 2}).set_requires_grad(true);
  Tensor s = Tensor::from_vector({0.5f, 1.f}, {2, 1}).set_requires_grad(true);
  Tensor z = Tensor::zeros({2, 1});
  sum(fake_quantize(x, s, z, args(QuantMethod::Lsq, -4, 4, 1.f))).backward();
  // row 0: v = 0.6 (0.4) and 18 (clipped: 4); row 1: v = 0.3 (round 0: -0.3) and 9 (4)
  check_close(s.grad().to_vector(), {4.4f, 3.7f}, 1e-6, "per-channel ds");
}

// aminmax: per row of the last dim, in one pass; NaN propagates (torch.aminmax); rows longer
// than the CPU's parallel chunk are split and combined.
BOOST_AUTO_TEST_CASE(aminmax_rows) {
  MinMax r = aminmax(Tensor::from_vector({3, -1, 2, 0, 5, 5, -7, 1, NAN}, {3, 3}));
  BOOST_TEST(r.min.shape() == Shape({3}));
  check_close({r.min.to_vector()[0], r.min.to_vector()[1]}, {-1, 0}, 0, "min");
  check_close({r.max.to_vector()[0], r.max.to_vector()[1]}, {3, 5}, 0, "max");
  BOOST_TEST(std::isnan(r.min.to_vector()[2]));
  BOOST_TEST(std::isnan(r.max.to_vector()[2]));
  std::vector<float> big(100003);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>((i * 7919) % 100003) - 50000.f;
  MinMax b = aminmax(Tensor::from_vector(big, {100003}));
  BOOST_TEST(b.min.item() == -50000.f);
  BOOST_TEST(b.max.item() == 50002.f);
  // Rows long enough for the 16-lane loop: infinities are extremes, not NaN; a NaN in any lane
  // (and in the tail past the last 16) makes both NaN.
  std::vector<float> row(1000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(static_cast<float>(i));
  std::vector<float> rows = row;
  rows.insert(rows.end(), row.begin(), row.end());
  rows.insert(rows.end(), row.begin(), row.end());
  rows[1000 + 517] = -INFINITY;
  rows[1000 + 3] = INFINITY;
  rows[2000 + 517] = NAN;
  MinMax l = aminmax(Tensor::from_vector(rows, {3, 1000}));
  const float lo = *std::min_element(row.begin(), row.end()), hi = *std::max_element(row.begin(), row.end());
  BOOST_TEST(l.min.to_vector()[0] == lo);
  BOOST_TEST(l.max.to_vector()[0] == hi);
  BOOST_TEST(l.min.to_vector()[1] == -INFINITY);
  BOOST_TEST(l.max.to_vector()[1] == INFINITY);
  BOOST_TEST(std::isnan(l.min.to_vector()[2]));
  BOOST_TEST(std::isnan(l.max.to_vector()[2]));
  rows[2000 + 517] = row[517];
  rows[2000 + 998] = NAN;  // in the tail after 62 blocks of 16
  MinMax t = aminmax(Tensor::from_vector(rows, {3, 1000}));
  BOOST_TEST(std::isnan(t.min.to_vector()[2]));
  BOOST_TEST(std::isnan(t.max.to_vector()[2]));
}

BOOST_AUTO_TEST_SUITE_END()
