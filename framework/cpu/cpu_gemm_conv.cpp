// CPU kernels: GEMM through OpenBLAS (single-threaded calls, split over rows by our own pool so
// the partition is fixed) and convolution as im2col + GEMM per sample. Convolutions the direct
// AVX-512 kernels handle (conv_direct.h) go there instead.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/cpu/channel_affine.h"
#include "framework/cpu/conv_direct.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/scratch.h"
#include "framework/cpu/wgrad_split.h"

namespace shrink::cpu {

namespace {

void sgemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// Output columns oj whose input column jj = oj*stride - pad + kj*dil lies inside [0, w).
struct ValidRange {
  int64_t lo, hi;
};
ValidRange valid_cols(const Conv2dParams& p, int64_t kj) {
  int64_t off = kj * p.dil_w - p.pad_w;  // jj = oj * stride + off
  int64_t lo = off >= 0 ? 0 : (-off + p.stride_w - 1) / p.stride_w;
  int64_t hi = p.w - off <= 0 ? 0 : (p.w - off + p.stride_w - 1) / p.stride_w;
  lo = std::min(lo, p.ow);
  hi = std::clamp(hi, lo, p.ow);
  return {lo, hi};
}

// Unfolds one image's group of channels [cg, h, w] into col rows [cg*kh*kw][oh*ow], row r
// starting at col + r * ld (ld >= oh*ow lets several images share one wide col matrix).
void im2col(const float* x, int64_t cg, const Conv2dParams& p, float* col, int64_t ld) {
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t ki = 0; ki < p.kh; ++ki) {
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        float* dst = col + ((c * p.kh + ki) * p.kw + kj) * ld;
        const ValidRange v = valid_cols(p, kj);
        const int64_t off = kj * p.dil_w - p.pad_w;
        for (int64_t oi = 0; oi < p.oh; ++oi) {
          int64_t ii = oi * p.stride_h - p.pad_h + ki * p.dil_h;
          float* row = dst + oi * p.ow;
          if (ii < 0 || ii >= p.h) {
            std::fill_n(row, p.ow, 0.f);
            continue;
          }
          const float* src = x + (c * p.h + ii) * p.w + off;
          std::fill(row, row + v.lo, 0.f);
          if (p.stride_w == 1) {
            std::memcpy(row + v.lo, src + v.lo, (v.hi - v.lo) * sizeof(float));
          } else {
            for (int64_t oj = v.lo; oj < v.hi; ++oj) row[oj] = src[oj * p.stride_w];
          }
          std::fill(row + v.hi, row + p.ow, 0.f);
        }
      }
    }
  }
}

// One image's columns: the image itself for a 1x1, stride-1, unpadded convolution (its [c, h*w]
// layout already is the column matrix), else im2col into `col`.
const float* unfold(const float* x, int64_t cg, const Conv2dParams& p, float* col, int64_t ld) {
  if (p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 &&
      p.pad_w == 0 && ld == p.oh * p.ow)
    return x;
  im2col(x, cg, p, col, ld);
  return col;
}

// Folds col rows (as laid out by im2col) back into x [cg, h, w], accumulating overlaps.
void col2im(const float* col, int64_t cg, const Conv2dParams& p, float* x, int64_t ld) {
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t ki = 0; ki < p.kh; ++ki) {
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        const float* src = col + ((c * p.kh + ki) * p.kw + kj) * ld;
        const ValidRange v = valid_cols(p, kj);
        const int64_t off = kj * p.dil_w - p.pad_w;
        for (int64_t oi = 0; oi < p.oh; ++oi) {
          int64_t ii = oi * p.stride_h - p.pad_h + ki * p.dil_h;
          if (ii < 0 || ii >= p.h) continue;
          float* __restrict dst = x + (c * p.h + ii) * p.w + off;
          const float* __restrict row = src + oi * p.ow;
          if (p.stride_w == 1) {
            for (int64_t oj = v.lo; oj < v.hi; ++oj) dst[oj] += row[oj];
          } else {
            for (int64_t oj = v.lo; oj < v.hi; ++oj) dst[oj * p.stride_w] += row[oj];
          }
        }
      }
    }
  }
}

// Images per GEMM: enough columns for OpenBLAS to run efficiently, bounded col memory.
int64_t images_per_gemm(const Conv2dParams& p) {
  const int64_t kdim = p.c / p.groups * p.kh * p.kw, ohw = p.oh * p.ow;
  // Large images already give OpenBLAS wide enough GEMMs; one image per GEMM then needs no
  // gather/scatter copies (its NCHW slices are the GEMM operands themselves).
  if (ohw >= 512) return 1;
  const int64_t by_cols = std::max<int64_t>(1, 4096 / std::max<int64_t>(ohw, 1));
  const int64_t by_mem = std::max<int64_t>(1, (1 << 20) / std::max<int64_t>(kdim * ohw, 1));
  return std::max<int64_t>(1, std::min({by_cols * 2, by_mem, p.n}));
}

// Row stride of a chunk's column and gradient matrices. A chunk of one image uses its NCHW
// slices directly (stride ohw), so its matrices must use that stride too.
int64_t chunk_ld(int64_t n0, int64_t n1, int64_t s, int64_t ohw) { return n1 - n0 == 1 ? ohw : s * ohw; }

// Splits the batch into chunks of images; each chunk is processed by one thread.
template <typename Fn>
void for_image_chunks(const Conv2dParams& p, Fn fn) {
  const int64_t s = images_per_gemm(p);
  const int64_t chunks = (p.n + s - 1) / s;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c * s, std::min(p.n, (c + 1) * s), s);
  });
}

}  // namespace

void CpuBackend::gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
  // Split rows of C across threads when the product is large enough to pay for it.
  const int64_t work = m * n * k;
  if (work < (1 << 18) || m < 8) {
    sgemm_serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_for(m, 4, [&](int64_t r0, int64_t r1) {
    const float* a_rows = ta ? a + r0 : a + r0 * lda;  // op(A) rows are A's columns when ta
    sgemm_serial(ta, tb, r1 - r0, n, k, alpha, a_rows, lda, b, ldb, beta, c + r0 * ldc, ldc);
  });
}

namespace {
// The im2col + GEMM forward; after_images(n0, n1), when given, runs on images [n0, n1) of y on
// the thread that just wrote them.
void im2col_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias,
                    Tensor& y, const std::function<void(int64_t, int64_t)>& after_images) {
  const int64_t cg = p.c / p.groups, ocg = p.oc / p.groups;
  const int64_t kdim = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  const float* bp = bias ? bias->data<float>() : nullptr;
  float* yp = y.data<float>();
  // Several images share one GEMM: col [kdim, S*ohw], out [ocg, S*ohw], then scattered to NCHW.
  for_image_chunks(p, [&](int64_t n0, int64_t n1, int64_t s) {
    const int64_t cols = (n1 - n0) * ohw, ld = s * ohw;
    float* col = scratch(kScratchCol, kdim * ld);
    float* out = scratch(kScratchOut, ocg * ld);
    for (int64_t g = 0; g < p.groups; ++g) {
      if (n1 - n0 == 1) {  // write straight into y's slice
        const float* src = unfold(xp + (n0 * p.c + g * cg) * p.h * p.w, cg, p, col, ohw);
        float* dst = yp + (n0 * p.oc + g * ocg) * ohw;
        sgemm_serial(false, false, ocg, ohw, kdim, 1.f, wp + g * ocg * kdim, kdim, src, ohw, 0.f,
                     dst, ohw);
        if (bp)
          for (int64_t o = 0; o < ocg; ++o) {
            const float b = bp[g * ocg + o];
            float* __restrict row = dst + o * ohw;
            for (int64_t i = 0; i < ohw; ++i) row[i] += b;
          }
        continue;
      }
      for (int64_t n = n0; n < n1; ++n)
        im2col(xp + (n * p.c + g * cg) * p.h * p.w, cg, p, col + (n - n0) * ohw, ld);
      sgemm_serial(false, false, ocg, cols, kdim, 1.f, wp + g * ocg * kdim, kdim, col, ld, 0.f,
                   out, ld);
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t o = 0; o < ocg; ++o) {
          const float* __restrict src = out + o * ld + (n - n0) * ohw;
          float* __restrict dst = yp + (n * p.oc + g * ocg + o) * ohw;
          const float b = bp ? bp[g * ocg + o] : 0.f;
          for (int64_t i = 0; i < ohw; ++i) dst[i] = src[i] + b;
        }
    }
    if (after_images) after_images(n0, n1);
  });
}
}  // namespace

void CpuBackend::conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                const Tensor* bias, Tensor& y) {
  if (direct_conv::handles(p))
    direct_conv::forward(p, x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr,
                         y.data<float>());
  else
    im2col_forward(p, x, w, bias, y, nullptr);
}

void CpuBackend::conv2d_batch_norm_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                           const Tensor* bias, const Tensor& mean, const Tensor& invstd,
                                           const Tensor* bn_weight, const Tensor* bn_bias,
                                           const BatchNormEpilogue& ep, Tensor& y) {
  const float* mp = mean.data<float>();
  const float* sp = invstd.data<float>();
  const float* wp = bn_weight ? bn_weight->data<float>() : nullptr;
  const float* bp = bn_bias ? bn_bias->data<float>() : nullptr;
  const float* rp = ep.residual ? ep.residual->data<float>() : nullptr;
  float* yp = y.data<float>();
  const int64_t ohw = p.oh * p.ow;
  const ApplyRow row = apply_row_for(rp != nullptr, ep.relu);
  auto normalise = [&](int64_t r) {  // row r = (image, channel) of y, in place
    row(yp + r * ohw, rp ? rp + r * ohw : nullptr, yp + r * ohw, ohw, channel_affine(r % p.oc, mp, sp, wp, bp));
  };
  auto normalise_images = [&](int64_t n0, int64_t n1) {
    for (int64_t r = n0 * p.oc; r < n1 * p.oc; ++r) normalise(r);
  };
  if (direct_conv::handles(p))
    direct_conv::forward(p, x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr, yp,
                         [&](int64_t n) { normalise_images(n, n + 1); });
  else
    im2col_forward(p, x, w, bias, y, normalise_images);
}

namespace {
// gy[n0:n1, group g] as a [ocg, S*ohw] matrix (the layout of the forward GEMM output): the
// slice itself for one image, else gathered into `dst`.
const float* grad_matrix(const float* gyp, const Conv2dParams& p, int64_t g, int64_t n0,
                         int64_t n1, int64_t ld, float* dst) {
  const int64_t ocg = p.oc / p.groups, ohw = p.oh * p.ow;
  if (n1 - n0 == 1) return gyp + (n0 * p.oc + g * ocg) * ohw;
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t o = 0; o < ocg; ++o)
      std::memcpy(dst + o * ld + (n - n0) * ohw, gyp + (n * p.oc + g * ocg + o) * ohw,
                  ohw * sizeof(float));
  return dst;
}
}  // namespace

void CpuBackend::conv2d_backward_input(const Conv2dParams& p, const Tensor& gy, const Tensor& w,
                                       Tensor& gx) {
  if (direct_conv::handles_input_grad(p)) {
    direct_conv::backward_input(p, gy.data<float>(), w.data<float>(), gx.data<float>());
    return;
  }
  const int64_t cg = p.c / p.groups, ocg = p.oc / p.groups;
  const int64_t kdim = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const float* gyp = gy.data<float>();
  const float* wp = w.data<float>();
  float* gxp = gx.data<float>();
  for_image_chunks(p, [&](int64_t n0, int64_t n1, int64_t s) {
    const int64_t cols = (n1 - n0) * ohw, ld = chunk_ld(n0, n1, s, ohw);
    float* col = scratch(kScratchCol, kdim * ld);
    float* g_mat = scratch(kScratchOut, ocg * ld);
    std::fill(gxp + n0 * p.c * p.h * p.w, gxp + n1 * p.c * p.h * p.w, 0.f);
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* gm = grad_matrix(gyp, p, g, n0, n1, ld, g_mat);
      sgemm_serial(true, false, kdim, cols, ocg, 1.f, wp + g * ocg * kdim, kdim, gm, ld, 0.f,
                   col, ld);
      for (int64_t n = n0; n < n1; ++n)
        col2im(col + (n - n0) * ohw, cg, p, gxp + (n * p.c + g * cg) * p.h * p.w, ld);
    }
  });
}

void CpuBackend::conv2d_backward(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                                 const Tensor& w, Tensor* gx, Tensor* gw) {
  // The direct kernels share one NHWC copy of gy between the two gradients.
  if (direct_conv::handles(p)) {
    const bool direct_gx = gx && direct_conv::handles_input_grad(p);
    if (gx && !direct_gx) conv2d_backward_input(p, gy, w, *gx);
    if (direct_gx || gw)
      direct_conv::backward(p, gy.data<float>(), x.data<float>(), w.data<float>(),
                            direct_gx ? gx->data<float>() : nullptr, gw ? gw->data<float>() : nullptr);
    return;
  }
  if (gx) conv2d_backward_input(p, gy, w, *gx);
  if (gw) conv2d_backward_weight(p, gy, x, *gw);
}

void CpuBackend::conv2d_backward_weight(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                                        Tensor& gw) {
  if (direct_conv::handles(p)) {
    direct_conv::backward_weight(p, gy.data<float>(), x.data<float>(), gw.data<float>());
    return;
  }
  const int64_t cg = p.c / p.groups, ocg = p.oc / p.groups;
  const int64_t kdim = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const float* gyp = gy.data<float>();
  const float* xp = x.data<float>();
  const int64_t wsize = p.oc * kdim;
  const int64_t s = images_per_gemm(p);
  const int64_t nchunks = (p.n + s - 1) / s;
  // Each thread accumulates its own partial gradient over a fixed range of image chunks;
  // partials are summed in thread order, so the result is reproducible. With many threads and a
  // large weight, the partials' rows split into slices instead (wgrad_split.h).
  const WgradSplit split = wgrad_split(num_threads(), std::max<int64_t>(nchunks, 1),
                                       wsize * static_cast<int64_t>(sizeof(float)), (ocg + 15) / 16);
  const int threads = static_cast<int>(split.chunks);
  std::vector<std::vector<float>> partial(threads, std::vector<float>(wsize, 0.f));
  // Image chunks [c0, c1) into acc, rows [r0, r1) of each group's output channels.
  auto accumulate = [&](int64_t c0, int64_t c1, float* acc, int64_t r0, int64_t r1) {
    float* col = scratch(kScratchCol, kdim * s * ohw);
    float* g_mat = scratch(kScratchOut, ocg * s * ohw);
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t n0 = c * s, n1 = std::min(p.n, n0 + s), cols = (n1 - n0) * ohw;
      const int64_t ld = chunk_ld(n0, n1, s, ohw);
      for (int64_t g = 0; g < p.groups; ++g) {
        const float* src = col;
        if (n1 - n0 == 1)
          src = unfold(xp + (n0 * p.c + g * cg) * p.h * p.w, cg, p, col, ld);
        else
          for (int64_t n = n0; n < n1; ++n)
            im2col(xp + (n * p.c + g * cg) * p.h * p.w, cg, p, col + (n - n0) * ohw, ld);
        const float* gm = grad_matrix(gyp, p, g, n0, n1, ld, g_mat);
        sgemm_serial(false, true, r1 - r0, kdim, cols, 1.f, gm + r0 * ld, ld, src, ld, 1.f,
                     acc + (g * ocg + r0) * kdim, kdim);
      }
    }
  };
  const int items = static_cast<int>(split.chunks * split.slices);
  parallel_chunks(items, items, [&](int item, int64_t, int64_t) {
    const int64_t t = item / split.slices;
    int64_t r0, r1;
    slice_range(ocg, 16, item % split.slices, split.slices, r0, r1);
    accumulate(nchunks * t / threads, nchunks * (t + 1) / threads, partial[t].data(), r0, r1);
  });
  float* gwp = gw.data<float>();
  std::copy(partial[0].begin(), partial[0].end(), gwp);
  for (int t = 1; t < threads; ++t)
    for (int64_t i = 0; i < wsize; ++i) gwp[i] += partial[t][i];
}

}  // namespace shrink::cpu
