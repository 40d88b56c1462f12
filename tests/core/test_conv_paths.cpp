// The CPU convolution splits a batch into chunks of images per GEMM (one image per GEMM for
// large images, several for small ones, a last chunk of one image when the batch does not divide
// evenly). Every split must compute exactly what the convolution of each image alone computes:
// forward, input gradient and weight gradient, compared image by image.
#include <boost/test/unit_test.hpp>

#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;

namespace {
struct Grads {
  Tensor y, gx, gw;
};

Grads run(const Tensor& x, const Tensor& w, const Tensor& gy, const Conv2dOptions& o) {
  Tensor xr = x.detach().contiguous_copy().set_requires_grad(true);
  Tensor wr = w.detach().contiguous_copy().set_requires_grad(true);
  Tensor y = conv2d(xr, wr, Tensor(), o);
  sum(mul(y, gy)).backward();
  return {y.detach(), xr.grad(), wr.grad()};
}

void check_batch_equals_images(const Shape& xs, const Shape& ws, const Conv2dOptions& o) {
  Tensor x = shrink::testing::seeded_randn(xs, 1), w = shrink::testing::seeded_randn(ws, 2, 0.1f);
  Grads whole = run(x, w, shrink::testing::seeded_randn(run(x, w, Tensor::ones({1}), o).y.shape(), 3), o);
  Tensor gy = shrink::testing::seeded_randn(whole.y.shape(), 3);
  whole = run(x, w, gy, o);
  Tensor gw_sum;
  for (int64_t n = 0; n < xs[0]; ++n) {
    Grads one = run(slice(x, 0, n, n + 1), w, slice(gy, 0, n, n + 1), o);
    // Same GEMMs on the same rows: forward and input gradient agree to rounding of the GEMM
    // blocking (OpenBLAS may block a wide GEMM differently from a narrow one).
    shrink::testing::check_close(slice(whole.y, 0, n, n + 1).to_vector(), one.y.to_vector(), 1e-4, "forward");
    shrink::testing::check_close(slice(whole.gx, 0, n, n + 1).to_vector(), one.gx.to_vector(), 1e-4, "grad input");
    gw_sum = gw_sum.defined() ? add(gw_sum, one.gw) : one.gw;
  }
  // The weight gradient sums over images in a different order: a relative 1e-4 bound.
  shrink::testing::check_close(whole.gw.to_vector(), gw_sum.to_vector(), 1e-3, "grad weight");
}
}  // namespace

BOOST_AUTO_TEST_SUITE(conv_paths)

BOOST_AUTO_TEST_CASE(small_images_with_a_one_image_tail) {
  // 14x14 outputs with a 576-deep kernel: 9 images per GEMM, so 10 images end in a chunk of 1.
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  check_batch_equals_images({10, 64, 14, 14}, {8, 64, 3, 3}, o);
}

BOOST_AUTO_TEST_CASE(large_images_one_per_gemm) {
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  check_batch_equals_images({3, 2, 28, 28}, {4, 2, 3, 3}, o);
}

BOOST_AUTO_TEST_CASE(pointwise_and_grouped) {
  check_batch_equals_images({5, 6, 30, 30}, {4, 6, 1, 1}, {});
  Conv2dOptions g;
  g.groups = 2;
  g.stride_h = g.stride_w = 2;
  check_batch_equals_images({11, 64, 15, 15}, {8, 32, 3, 3}, g);
}

BOOST_AUTO_TEST_SUITE_END()
