// The two CPU convolution paths, direct AVX-512 kernels (framework/cpu/conv_direct.h) and
// im2col + OpenBLAS, against a plain double-precision convolution written here: forward, input
// gradient and weight gradient, on shapes chosen to cross every tiling boundary of the direct
// kernels (16/32-channel blocks and their tails, rows split into several tiles, channel tiles of
// the weight gradient, strides and the input-gradient phases they make, 1x1 and 5x5 kernels,
// padding wider than the kernel). Layers with 1-2 input channels take im2col on both paths, and
// their input gradient with up to 4 (direct_conv::handles_input_grad).
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "framework/cpu/conv_direct.h"
#include "framework/cpu/wgrad_split.h"
#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;
namespace direct = shrink::cpu::direct_conv;

namespace {

struct Case {
  Shape x, w;
  Conv2dOptions o;
};

Conv2dOptions opts(int64_t pad_h, int64_t pad_w, int64_t stride_h = 1, int64_t stride_w = 1,
                   int64_t dil = 1) {
  Conv2dOptions o;
  o.pad_h = pad_h;
  o.pad_w = pad_w;
  o.stride_h = stride_h;
  o.stride_w = stride_w;
  o.dil_h = o.dil_w = dil;
  return o;
}

struct Reference {
  std::vector<double> y, gx, gw;
};

// Direct definition: y[n][o][i][j] = sum_{c,ki,kj} x[n][c][i*s-p+ki*d][j*s-p+kj*d] w[o][c][ki][kj],
// and the two gradients of sum(y * gy) by the same index relation.
Reference reference(const Case& k, const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& gy, int64_t oh, int64_t ow) {
  const int64_t n = k.x[0], c = k.x[1], h = k.x[2], wd = k.x[3], oc = k.w[0], kh = k.w[2],
                kw = k.w[3];
  const Conv2dOptions& o = k.o;
  Reference r{std::vector<double>(n * oc * oh * ow), std::vector<double>(x.size()),
              std::vector<double>(w.size())};
  for (int64_t b = 0; b < n; ++b)
    for (int64_t q = 0; q < oc; ++q)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t yi = ((b * oc + q) * oh + i) * ow + j;
          double acc = 0;
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t ki = 0; ki < kh; ++ki)
              for (int64_t kj = 0; kj < kw; ++kj) {
                const int64_t ii = i * o.stride_h - o.pad_h + ki * o.dil_h;
                const int64_t jj = j * o.stride_w - o.pad_w + kj * o.dil_w;
                if (ii < 0 || ii >= h || jj < 0 || jj >= wd) continue;
                const int64_t xi = ((b * c + ch) * h + ii) * wd + jj;
                const int64_t wi = ((q * c + ch) * kh + ki) * kw + kj;
                acc += double(x[xi]) * w[wi];
                r.gx[xi] += double(gy[yi]) * w[wi];
                r.gw[wi] += double(gy[yi]) * x[xi];
              }
          r.y[yi] = acc;
        }
  return r;
}

void check_against(const std::vector<float>& got, const std::vector<double>& want, double tol,
                   const std::string& what) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    if (err > worst) worst = err, at = i;
  }
  BOOST_CHECK_MESSAGE(worst <= tol, what << ": largest error " << worst << " at " << at
                                         << " (got " << got[at] << ", want " << want[at]
                                         << "), tolerance " << tol);
}

// Runs one case on the current path and compares all three results with the reference: with
// both gradients wanted (one shared backward pass), and with only one of them.
void check_case(const Case& k, const std::string& path) {
  const Tensor x0 = testing::seeded_randn(k.x, 11), w0 = testing::seeded_randn(k.w, 12, 0.2f);
  const Tensor y0 = conv2d(x0, w0, Tensor(), k.o);
  const Tensor gy = testing::seeded_randn(y0.shape(), 13);
  const Reference r = reference(k, x0.to_vector(), w0.to_vector(), gy.to_vector(), y0.size(2),
                                y0.size(3));
  // fp32 sums of up to a few thousand unit-variance products: errors grow like sqrt(terms).
  const double fwd_terms = static_cast<double>(k.x[1] * k.w[2] * k.w[3]);
  const double wgrad_terms = static_cast<double>(k.x[0] * y0.size(2) * y0.size(3));
  std::ostringstream name;
  name << path << " x" << k.x << " w" << k.w;
  check_against(y0.to_vector(), r.y, 8e-6 * std::sqrt(fwd_terms), name.str() + " forward");
  for (int wanted = 1; wanted <= 3; ++wanted) {  // bit 0: input gradient, bit 1: weight gradient
    Tensor x = x0.detach().contiguous_copy().set_requires_grad(wanted & 1);
    Tensor w = w0.detach().contiguous_copy().set_requires_grad(wanted & 2);
    sum(mul(conv2d(x, w, Tensor(), k.o), gy)).backward();
    if (wanted & 1)
      check_against(x.grad().to_vector(), r.gx, 8e-6 * std::sqrt(k.w[0] * fwd_terms),
                    name.str() + " grad input (wanted " + std::to_string(wanted) + ")");
    if (wanted & 2)
      check_against(w.grad().to_vector(), r.gw, 1.6e-5 * std::sqrt(wgrad_terms),
                    name.str() + " grad weight (wanted " + std::to_string(wanted) + ")");
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all{
      {{2, 16, 28, 28}, {16, 16, 3, 3}, opts(1, 1)},        // one 16-block, a 28-pixel tile
      {{3, 32, 14, 14}, {32, 32, 3, 3}, opts(1, 1)},        // one 32-block, a 14-pixel tile
      {{2, 64, 7, 7}, {64, 64, 3, 3}, opts(1, 1)},          // two 32-blocks; C tiles 13,13,...
      {{2, 16, 28, 28}, {32, 16, 3, 3}, opts(1, 1, 2, 2)},  // stride 2: 4 input-grad phases
      {{2, 32, 28, 28}, {16, 32, 3, 3}, opts(1, 1)},        // fixed pixel step 32, one 16-block
      {{2, 16, 14, 14}, {16, 16, 3, 3}, opts(1, 1)},        // a fixed-step 14-pixel one-block tile
      {{2, 64, 14, 14}, {16, 64, 3, 3}, opts(1, 1, 2, 2)},  // step 128 (stride 2), 7-pixel tiles
      {{2, 32, 14, 14}, {64, 32, 3, 3}, opts(1, 1, 2, 2)},  // 7-wide output: pairs of rows, step 64
      {{2, 16, 6, 7}, {32, 16, 3, 3}, opts(1, 1)},          // pairs of rows with step 16, even count
      {{1, 128, 7, 7}, {32, 128, 1, 1}, opts(0, 0)},        // pairs with step 128, then a single row
      // The other fixed-step tiles: one 16-block at steps 64 and 128 (28, 14 and 7 pixels), two
      // 16-blocks at 64 and 128 (14 pixels).
      {{1, 64, 28, 28}, {16, 64, 3, 3}, opts(1, 1)},
      {{1, 128, 28, 28}, {16, 128, 1, 1}, opts(0, 0)},
      {{1, 64, 14, 14}, {16, 64, 3, 3}, opts(1, 1)},
      {{1, 128, 14, 14}, {16, 128, 1, 1}, opts(0, 0)},
      {{1, 16, 7, 7}, {16, 16, 3, 3}, opts(1, 1)},
      {{1, 64, 7, 7}, {16, 64, 3, 3}, opts(1, 1)},
      {{1, 64, 14, 14}, {32, 64, 3, 3}, opts(1, 1)},
      {{1, 128, 14, 14}, {32, 128, 1, 1}, opts(0, 0)},
      {{1, 16, 4, 55}, {16, 16, 3, 3}, opts(1, 1)},         // a full 28-pixel tile, then a partial one
      {{1, 16, 7, 7}, {48, 16, 3, 3}, opts(1, 1)},          // pairs of rows, then a 16-channel block
      {{2, 16, 14, 14}, {32, 16, 1, 1}, opts(0, 0, 2, 2)},  // 1x1 stride 2: phases with no tap
      {{2, 3, 11, 13}, {5, 3, 5, 4}, opts(2, 1, 3, 2)},     // stride 3x2, odd sizes
      {{1, 2, 7, 7}, {4, 2, 3, 3}, opts(0, 0, 4, 4)},       // stride above the kernel
      {{2, 6, 14, 14}, {16, 6, 5, 5}, opts(0, 0)},          // lenet5 conv2
      {{3, 1, 28, 28}, {6, 1, 5, 5}, opts(2, 2)},           // lenet5 conv1, 6 of 16 lanes
      {{2, 3, 9, 40}, {48, 3, 3, 3}, opts(1, 1)},           // rows of 14+14+12, then a 16 tail
      {{1, 40, 5, 6}, {20, 40, 1, 1}, opts(0, 0)},          // weight-grad C tiles 14,14,12
      {{2, 5, 8, 9}, {7, 5, 2, 3}, opts(1, 2, 1, 2)},       // unequal strides and padding
      {{2, 2, 5, 5}, {3, 2, 1, 1}, opts(1, 1)},             // padding beyond a 1x1 kernel
      {{2, 4, 9, 9}, {5, 4, 3, 3}, opts(2, 2, 1, 1, 2)},    // dilation: im2col only
  };
  return all;
}

struct RestoreDirect {
  bool was = direct::enabled();
  ~RestoreDirect() { direct::set_enabled(was); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_direct)

BOOST_AUTO_TEST_CASE(im2col_path_matches_reference) {
  RestoreDirect restore;
  direct::set_enabled(false);
  for (const Case& k : cases()) check_case(k, "im2col");
}

BOOST_AUTO_TEST_CASE(direct_path_matches_reference) {
  RestoreDirect restore;
  if (!direct::available()) {
    BOOST_TEST_MESSAGE("conv_direct: this CPU lacks AVX-512F; only the im2col path is tested");
    return;
  }
  direct::set_enabled(true);
  for (const Case& k : cases()) check_case(k, "direct");
}

// A weight with no input channels (C = 0): zero output, an empty weight gradient, on both paths.
BOOST_AUTO_TEST_CASE(no_input_channels) {
  RestoreDirect restore;
  for (bool on : {false, true}) {
    direct::set_enabled(on);
    Tensor x = Tensor::zeros({2, 0, 5, 5}).set_requires_grad(true);
    Tensor w = Tensor::zeros({3, 0, 3, 3}).set_requires_grad(true);
    Tensor y = conv2d(x, w, Tensor(), opts(1, 1));
    BOOST_TEST(y.shape() == (Shape{2, 3, 5, 5}));
    for (float v : y.to_vector()) BOOST_TEST(v == 0.f);
    sum(y).backward();
    BOOST_TEST(w.grad().numel() == 0);
  }
}

BOOST_AUTO_TEST_CASE(direct_path_takes_what_it_should) {
  RestoreDirect restore;
  direct::set_enabled(true);
  Conv2dParams p{};
  p.n = 1; p.c = 16; p.h = p.w = 8; p.oc = 16; p.kh = p.kw = 3; p.oh = p.ow = 8;
  p.stride_h = p.stride_w = 1; p.pad_h = p.pad_w = 1; p.dil_h = p.dil_w = 1; p.groups = 1;
  const bool avx = direct::available();
  BOOST_TEST(direct::handles(p) == avx);  // forward and weight gradient (and, from 5 channels, the input gradient)
  Conv2dParams strided = p;
  strided.stride_h = 2;
  strided.pad_w = 3;
  BOOST_TEST(direct::handles(strided) == avx);  // the input gradient by phases
  Conv2dParams grouped = p;
  grouped.groups = 2;
  BOOST_TEST(!direct::handles(grouped));
  Conv2dParams dilated = p;
  dilated.dil_w = 2;
  BOOST_TEST(!direct::handles(dilated));
  BOOST_TEST(direct::handles_input_grad(p) == avx);
  Conv2dParams narrow = p;  // 1-2 input channels: im2col throughout; 3-4: not the input gradient
  for (int64_t c : {1, 2, 3, 4, 5}) {
    narrow.c = c;
    BOOST_TEST(direct::handles(narrow) == (avx && c >= 3));
    BOOST_TEST(direct::handles_input_grad(narrow) == (avx && c >= 5));
  }
  direct::set_enabled(false);
  BOOST_TEST(!direct::handles(p));
}

// Weight-gradient partials stay within kWgradPartialBytes: 64 threads on a 512x512 3x3 layer
// (9.4 MB a partial) use 3 partials with the output channels split 21 ways, not 64 partials
// (604 MB); the gradients equal the 2-thread ones (a partial per thread) on both paths.
BOOST_AUTO_TEST_CASE(weight_gradient_partials_are_bounded) {
  const int64_t wbytes = 512 * 512 * 9 * 4;
  const cpu::WgradSplit many = cpu::wgrad_split(64, 64, wbytes, 512 / 32);
  BOOST_TEST(many.chunks * wbytes <= cpu::kWgradPartialBytes);
  BOOST_TEST(many.chunks == 3);
  BOOST_TEST(many.slices == 16);  // at most one per 32 output channels
  const cpu::WgradSplit two = cpu::wgrad_split(2, 64, wbytes, 512 / 32);
  BOOST_TEST((two.chunks == 2 && two.slices == 1));
  const cpu::WgradSplit small = cpu::wgrad_split(64, 64, 4 * 4 * 9 * 4, 1);  // tiny weight
  BOOST_TEST((small.chunks == 64 && small.slices == 1));

  RestoreDirect restore;
  const int threads_before = num_threads();
  Tensor w = shrink::testing::seeded_randn({512, 512, 3, 3}, 42, 0.05f);
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  for (bool use_direct : {false, true}) {
    if (use_direct && !direct::available()) continue;
    direct::set_enabled(use_direct);
    // The im2col path splits the batch by GEMM: 23x23 images go one per GEMM, so 4 images are
    // 4 GEMM chunks, in 2 partials x 32 row slices on 64 threads; the direct path (6 images)
    // takes 3 partials x 16 slices.
    const Shape xs = use_direct ? Shape{6, 512, 4, 4} : Shape{4, 512, 23, 23};
    Tensor x = shrink::testing::seeded_randn(xs, 41);
    Tensor gy = shrink::testing::seeded_randn(xs, 43);
    std::vector<float> gx_ref, gw_ref;
    for (int threads : {2, 64}) {
      set_num_threads(threads);
      Tensor xr = x.detach().contiguous_copy().set_requires_grad(true);
      Tensor wr = w.detach().contiguous_copy().set_requires_grad(true);
      sum(mul(conv2d(xr, wr, Tensor(), o), gy)).backward();
      if (threads == 2) {
        gx_ref = xr.grad().to_vector();
        gw_ref = wr.grad().to_vector();
        continue;
      }
      const std::string path = use_direct ? "direct" : "im2col";
      // The slices write disjoint rows; the direct path also groups the images differently.
      shrink::testing::check_close(wr.grad().to_vector(), gw_ref, 1e-4, (path + " weight gradient, 64 threads").c_str());
      shrink::testing::check_close(xr.grad().to_vector(), gx_ref, 1e-5, (path + " input gradient, 64 threads").c_str());
    }
  }
  set_num_threads(threads_before);
}

BOOST_AUTO_TEST_SUITE_END()
