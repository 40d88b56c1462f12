// apply_mask and fake_quantize: values against hand-computed expectations, the straight-through
// gradients analytically (their defining property), apply_mask numerically.
#include <boost/test/unit_test.hpp>

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
}

BOOST_AUTO_TEST_SUITE_END()
