// The byte and flop formulas bench_kernels divides by, against hand counts.
#include <boost/test/unit_test.hpp>

#include "cuda/bench/traffic.h"

using namespace shrink::bench;

BOOST_AUTO_TEST_SUITE(traffic_formulas)

BOOST_AUTO_TEST_CASE(elementwise_bytes) {
  BOOST_TEST(bytes_copy(1000) == 8000);         // 1000 floats read + 1000 written
  BOOST_TEST(bytes_fill(1000) == 4000);
  BOOST_TEST(bytes_unary(10) == 80);
  BOOST_TEST(bytes_unary_backward(10) == 120);  // x, gy read; gx written
  BOOST_TEST(bytes_binary(1000, 1000) == 12000);
  BOOST_TEST(bytes_binary(1000, 10) == 8040);   // a row broadcast is read once
  BOOST_TEST(bytes_mask(64, 64) == 768);
  BOOST_TEST(bytes_fake_quant(100, 1) == 808);  // x, y and one (scale, zero point)
  BOOST_TEST(bytes_fake_quant(100, 4) == 832);
  BOOST_TEST(bytes_fake_quant_backward(100, 1) == 1208);
}

BOOST_AUTO_TEST_CASE(reduction_and_update_bytes) {
  BOOST_TEST(bytes_reduce_rows(2, 100) == 808);  // 200 read, 2 written
  BOOST_TEST(bytes_softmax(2, 100) == 1600);
  BOOST_TEST(bytes_sgd_momentum(10) == 200);     // p, buf read+written (4), grad read (1)
  BOOST_TEST(bytes_adam(10) == 280);             // p, m, v read+written (6), grad read (1)
  BOOST_TEST(bytes_distill(2, 100) == 2408);    // s, t read, grad written (600), a loss per row
}

BOOST_AUTO_TEST_CASE(flops) {
  BOOST_TEST(flops_gemm(2, 3, 4) == 48.0);
  // 1 image, 3 -> 8 channels, 3x3 kernel, 4x4 output: 8 * 16 * 27 MACs.
  BOOST_TEST(flops_conv2d(1, 3, 8, 4, 4, 3, 3, 1) == 2.0 * 8 * 16 * 27);
  BOOST_TEST(flops_conv2d(1, 8, 8, 4, 4, 3, 3, 8) == 2.0 * 8 * 16 * 9);  // depthwise
}

BOOST_AUTO_TEST_SUITE_END()
