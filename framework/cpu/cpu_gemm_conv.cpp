// CPU kernels: GEMM through OpenBLAS (single-threaded calls, split over rows by our own pool so
// the partition is fixed) and convolution as im2col + GEMM per sample.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/cpu/cpu_backend.h"

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

// Unfolds one image's group of channels [cg, h, w] into col [cg*kh*kw, oh*ow].
void im2col(const float* x, int64_t cg, const Conv2dParams& p, float* col) {
  const int64_t ohw = p.oh * p.ow;
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t ki = 0; ki < p.kh; ++ki) {
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        float* dst = col + ((c * p.kh + ki) * p.kw + kj) * ohw;
        for (int64_t oi = 0; oi < p.oh; ++oi) {
          int64_t ii = oi * p.stride_h - p.pad_h + ki * p.dil_h;
          float* row = dst + oi * p.ow;
          if (ii < 0 || ii >= p.h) {
            std::fill_n(row, p.ow, 0.f);
            continue;
          }
          const float* src = x + (c * p.h + ii) * p.w;
          for (int64_t oj = 0; oj < p.ow; ++oj) {
            int64_t jj = oj * p.stride_w - p.pad_w + kj * p.dil_w;
            row[oj] = (jj >= 0 && jj < p.w) ? src[jj] : 0.f;
          }
        }
      }
    }
  }
}

// Folds col [cg*kh*kw, oh*ow] back into x [cg, h, w], accumulating overlaps.
void col2im(const float* col, int64_t cg, const Conv2dParams& p, float* x) {
  const int64_t ohw = p.oh * p.ow;
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t ki = 0; ki < p.kh; ++ki) {
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        const float* src = col + ((c * p.kh + ki) * p.kw + kj) * ohw;
        for (int64_t oi = 0; oi < p.oh; ++oi) {
          int64_t ii = oi * p.stride_h - p.pad_h + ki * p.dil_h;
          if (ii < 0 || ii >= p.h) continue;
          float* dst = x + (c * p.h + ii) * p.w;
          const float* row = src + oi * p.ow;
          for (int64_t oj = 0; oj < p.ow; ++oj) {
            int64_t jj = oj * p.stride_w - p.pad_w + kj * p.dil_w;
            if (jj >= 0 && jj < p.w) dst[jj] += row[oj];
          }
        }
      }
    }
  }
}

bool is_pointwise(const Conv2dParams& p) {
  return p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 &&
         p.pad_w == 0;
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

void CpuBackend::conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                const Tensor* bias, Tensor& y) {
  const int64_t cg = p.c / p.groups, ocg = p.oc / p.groups;
  const int64_t kdim = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  const float* bp = bias ? bias->data<float>() : nullptr;
  float* yp = y.data<float>();
  const bool pw = is_pointwise(p);
  parallel_for(p.n, 1, [&](int64_t n0, int64_t n1) {
    std::vector<float> col(pw ? 0 : kdim * ohw);
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t g = 0; g < p.groups; ++g) {
        const float* xg = xp + (n * p.c + g * cg) * p.h * p.w;
        const float* src = xg;
        if (!pw) {
          im2col(xg, cg, p, col.data());
          src = col.data();
        }
        float* yg = yp + (n * p.oc + g * ocg) * ohw;
        if (bp) {
          for (int64_t o = 0; o < ocg; ++o) std::fill_n(yg + o * ohw, ohw, bp[g * ocg + o]);
        }
        sgemm_serial(false, false, ocg, ohw, kdim, 1.f, wp + g * ocg * kdim, kdim, src, ohw,
                     bp ? 1.f : 0.f, yg, ohw);
      }
    }
  });
}

void CpuBackend::conv2d_backward_input(const Conv2dParams& p, const Tensor& gy, const Tensor& w,
                                       Tensor& gx) {
  const int64_t cg = p.c / p.groups, ocg = p.oc / p.groups;
  const int64_t kdim = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const float* gyp = gy.data<float>();
  const float* wp = w.data<float>();
  float* gxp = gx.data<float>();
  const bool pw = is_pointwise(p);
  parallel_for(p.n, 1, [&](int64_t n0, int64_t n1) {
    std::vector<float> col(pw ? 0 : kdim * ohw);
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t g = 0; g < p.groups; ++g) {
        float* gxg = gxp + (n * p.c + g * cg) * p.h * p.w;
        const float* gyg = gyp + (n * p.oc + g * ocg) * ohw;
        if (pw) {  // gx = W^T gy directly
          sgemm_serial(true, false, kdim, ohw, ocg, 1.f, wp + g * ocg * kdim, kdim, gyg, ohw,
                       0.f, gxg, ohw);
          continue;
        }
        sgemm_serial(true, false, kdim, ohw, ocg, 1.f, wp + g * ocg * kdim, kdim, gyg, ohw, 0.f,
                     col.data(), ohw);
        std::fill_n(gxg, cg * p.h * p.w, 0.f);
        col2im(col.data(), cg, p, gxg);
      }
    }
  });
}

void CpuBackend::conv2d_backward_weight(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                                        Tensor& gw) {
  const int64_t cg = p.c / p.groups, ocg = p.oc / p.groups;
  const int64_t kdim = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const float* gyp = gy.data<float>();
  const float* xp = x.data<float>();
  const int64_t wsize = p.oc * kdim;
  const bool pw = is_pointwise(p);
  // Each chunk accumulates its own partial gradient; partials are summed in chunk order.
  const int chunks = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(p.n, 1)));
  std::vector<std::vector<float>> partial(chunks, std::vector<float>(wsize, 0.f));
  parallel_chunks(p.n, chunks, [&](int c, int64_t n0, int64_t n1) {
    std::vector<float> col(pw ? 0 : kdim * ohw);
    float* acc = partial[c].data();
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t g = 0; g < p.groups; ++g) {
        const float* xg = xp + (n * p.c + g * cg) * p.h * p.w;
        const float* src = xg;
        if (!pw) {
          im2col(xg, cg, p, col.data());
          src = col.data();
        }
        const float* gyg = gyp + (n * p.oc + g * ocg) * ohw;
        sgemm_serial(false, true, ocg, kdim, ohw, 1.f, gyg, ohw, src, ohw, 1.f,
                     acc + g * ocg * kdim, kdim);
      }
    }
  });
  float* gwp = gw.data<float>();
  std::copy(partial[0].begin(), partial[0].end(), gwp);
  for (int c = 1; c < chunks; ++c)
    for (int64_t i = 0; i < wsize; ++i) gwp[i] += partial[c][i];
}

}  // namespace shrink::cpu
