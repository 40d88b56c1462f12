// CPU kernels: pooling, batch norm, layer norm.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/cpu/channel_affine.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/lane_sum.h"

namespace shrink::cpu {

void CpuBackend::max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y,
                                    Tensor& index) {
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  int64_t* ip = index.data<int64_t>();
  parallel_for(p.n * p.c, 4, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      const float* plane = xp + nc * p.h * p.w;
      float* out = yp + nc * p.oh * p.ow;
      int64_t* arg_out = ip + nc * p.oh * p.ow;
      const bool two_by_two = p.kh == 2 && p.kw == 2 && p.stride_h == 2 && p.stride_w == 2 &&
                              p.pad_h == 0 && p.pad_w == 0;
      if (two_by_two && !any_nan(plane, p.h * p.w)) {
        // The common case, branch-free: std::max compiles to maxss (its tie keeps the first
        // operand, PyTorch's first-max rule) and the arg index is integer arithmetic on the
        // comparison results. Random data would mispredict half of any branch here. Planes with
        // a NaN take the general path below, which implements PyTorch's NaN rule.
        const int64_t w = p.w;
        for (int64_t oi = 0; oi < p.oh; ++oi) {
          const float* __restrict r0 = plane + 2 * oi * w;
          const float* __restrict r1 = r0 + w;
          float* __restrict o = out + oi * p.ow;
          int64_t* __restrict ao = arg_out + oi * p.ow;
          const int64_t base = 2 * oi * w;
          for (int64_t oj = 0, ow = p.ow; oj < ow; ++oj) {
            const int64_t j = 2 * oj;
            const float a = r0[j], b = r0[j + 1], c = r1[j], d = r1[j + 1];
            const float ab = std::max(a, b), cd = std::max(c, d);
            const int64_t iab = b > a, icd = w + (d > c), tc = cd > ab;
            o[oj] = std::max(ab, cd);
            ao[oj] = base + j + iab + tc * (icd - iab);
          }
        }
        continue;
      }
      for (int64_t oi = 0; oi < p.oh; ++oi) {
        const int64_t i0 = std::max<int64_t>(oi * p.stride_h - p.pad_h, 0);
        const int64_t i1 = std::min(oi * p.stride_h - p.pad_h + p.kh, p.h);
        for (int64_t oj = 0; oj < p.ow; ++oj) {
          const int64_t j0 = std::max<int64_t>(oj * p.stride_w - p.pad_w, 0);
          const int64_t j1 = std::min(oj * p.stride_w - p.pad_w + p.kw, p.w);
          // PyTorch's rule: take v when v > best or v is NaN; the first maximum in row-major
          // window order wins ties. Written as selects so the loop has no unpredictable branch.
          int64_t arg = i0 * p.w + j0;
          float best = plane[arg];
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = j0; j < j1; ++j) {
              const float v = plane[i * p.w + j];
              const bool take = (v > best) | (v != v);
              best = take ? v : best;
              arg = take ? i * p.w + j : arg;
            }
          out[oi * p.ow + oj] = best;
          arg_out[oi * p.ow + oj] = arg;
        }
      }
    }
  });
}

void CpuBackend::max_pool2d_backward(const Pool2dParams& p, const Tensor& gy, const Tensor& index,
                                     Tensor& gx) {
  const float* gyp = gy.data<float>();
  const int64_t* ip = index.data<int64_t>();
  float* gxp = gx.data<float>();
  const int64_t ohw = p.oh * p.ow, hw = p.h * p.w;
  parallel_for(p.n * p.c, 4, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      float* plane = gxp + nc * hw;
      std::fill_n(plane, hw, 0.f);
      for (int64_t o = 0; o < ohw; ++o) {
        int64_t arg = ip[nc * ohw + o];
        if (arg >= 0) plane[arg] += gyp[nc * ohw + o];
      }
    }
  });
}

namespace {
// Window [i0, i1) x [j0, j1) and its divisor for average pooling.
struct Window {
  int64_t i0, i1, j0, j1;
  float div;
};
Window avg_window(const Pool2dParams& p, int64_t oi, int64_t oj) {
  int64_t i0 = oi * p.stride_h - p.pad_h, j0 = oj * p.stride_w - p.pad_w;
  int64_t i1 = std::min(i0 + p.kh, p.h + p.pad_h), j1 = std::min(j0 + p.kw, p.w + p.pad_w);
  int64_t padded = (i1 - i0) * (j1 - j0);
  i0 = std::max<int64_t>(i0, 0);
  j0 = std::max<int64_t>(j0, 0);
  i1 = std::min(i1, p.h);
  j1 = std::min(j1, p.w);
  float div = static_cast<float>(p.count_include_pad ? padded : (i1 - i0) * (j1 - j0));
  return {i0, i1, j0, j1, div};
}
Window adaptive_window(const Pool2dParams& p, int64_t oi, int64_t oj) {
  int64_t i0 = (oi * p.h) / p.oh, i1 = ((oi + 1) * p.h + p.oh - 1) / p.oh;
  int64_t j0 = (oj * p.w) / p.ow, j1 = ((oj + 1) * p.w + p.ow - 1) / p.ow;
  return {i0, i1, j0, j1, static_cast<float>((i1 - i0) * (j1 - j0))};
}

template <typename WindowFn>
void avg_forward(const Pool2dParams& p, const Tensor& x, Tensor& y, WindowFn window) {
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(p.n * p.c, 4, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      const float* plane = xp + nc * p.h * p.w;
      for (int64_t oi = 0; oi < p.oh; ++oi)
        for (int64_t oj = 0; oj < p.ow; ++oj) {
          Window w = window(p, oi, oj);
          float s = 0.f;
          for (int64_t i = w.i0; i < w.i1; ++i)
            for (int64_t j = w.j0; j < w.j1; ++j) s += plane[i * p.w + j];
          yp[(nc * p.oh + oi) * p.ow + oj] = s / w.div;
        }
    }
  });
}

template <typename WindowFn>
void avg_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx, WindowFn window) {
  const float* gyp = gy.data<float>();
  float* gxp = gx.data<float>();
  parallel_for(p.n * p.c, 4, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      float* plane = gxp + nc * p.h * p.w;
      std::fill_n(plane, p.h * p.w, 0.f);
      for (int64_t oi = 0; oi < p.oh; ++oi)
        for (int64_t oj = 0; oj < p.ow; ++oj) {
          Window w = window(p, oi, oj);
          float g = gyp[(nc * p.oh + oi) * p.ow + oj] / w.div;
          for (int64_t i = w.i0; i < w.i1; ++i)
            for (int64_t j = w.j0; j < w.j1; ++j) plane[i * p.w + j] += g;
        }
    }
  });
}
}  // namespace

void CpuBackend::avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  avg_forward(p, x, y, avg_window);
}
void CpuBackend::avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx) {
  avg_backward(p, gy, gx, avg_window);
}
void CpuBackend::adaptive_avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  avg_forward(p, x, y, adaptive_window);
}
void CpuBackend::adaptive_avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy,
                                              Tensor& gx) {
  avg_backward(p, gy, gx, adaptive_window);
}

namespace {
// Sum of a contiguous row in float lanes (vectorisable), returned as double so that the
// per-channel totals over many rows keep double precision.
double row_sum(const float* __restrict p, int64_t n) {
  return lane_sum(n, [p](int64_t i) { return p[i]; });
}
double row_sq_dev(const float* __restrict p, int64_t n, float m) {
  return lane_sum(n, [p, m](int64_t i) { return (p[i] - m) * (p[i] - m); });
}
}  // namespace

void CpuBackend::batch_norm_stats(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                  Tensor& mean, Tensor& var_biased) {
  const float* xp = x.data<float>();
  float* mp = mean.data<float>();
  float* vp = var_biased.data<float>();
  const double count = static_cast<double>(outer * inner);
  // One pass over memory, in memory order: each row (o, ch) gets its sum and its squared
  // deviations from its own mean while it is in L1; rows then combine exactly per channel
  // (Chan et al.): M2 = sum M2_r + inner * sum (m_r - m)^2.
  std::vector<double> row_total(outer * c), row_m2(outer * c);
  parallel_for(outer * c, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* p = xp + r * inner;
      const double total = row_sum(p, inner), exact_mean = total / static_cast<double>(inner);
      const float m_r = static_cast<float>(exact_mean);
      const double d = exact_mean - m_r;  // row_sq_dev is about the rounded mean
      row_total[r] = total;
      row_m2[r] = row_sq_dev(p, inner, m_r) - static_cast<double>(inner) * d * d;
    }
  });
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0.0, m2 = 0.0;
    for (int64_t o = 0; o < outer; ++o) s += row_total[o * c + ch];
    const double m = s / count;
    for (int64_t o = 0; o < outer; ++o) {
      const double dm = row_total[o * c + ch] / static_cast<double>(inner) - m;
      m2 += row_m2[o * c + ch] + static_cast<double>(inner) * dm * dm;
    }
    mp[ch] = static_cast<float>(m);
    vp[ch] = static_cast<float>((m2 < 0.0 ? 0.0 : m2) / count);  // rounding below 0; NaN stays
  }
}

namespace {
// The gradient reaching the normalisation, element i of a row: gy itself, or through the ReLU
// epilogue's mask, gy where the recomputed pre-activation is positive (as the relu op's backward
// decides from its input).
struct PlainGrad {
  const float* g;
  float operator()(int64_t i) const { return g[i]; }
};
template <bool kResidual>
struct MaskedGrad {
  const float* p;
  const float* r;
  const float* g;
  ChannelAffine a;
  float operator()(int64_t i) const {
    const float v = pre_activation<kResidual>(p, r, i, a);
    // The load is unconditional on purpose: GCC 12.2 at -O3 with AVX2/AVX-512 miscompiles
    // `v > 0.f ? g[i] : 0.f` inside lane_sum's 16-lane loop (a wrong sum, not only a different
    // rounding); tests/nn/test_fusion.cpp catches it.
    const float gi = g[i];
    return v > 0.f ? gi : 0.f;
  }
};
}  // namespace

void CpuBackend::batch_norm_apply(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                  const Tensor& mean, const Tensor& invstd, const Tensor* weight,
                                  const Tensor* bias, const BatchNormEpilogue& ep, Tensor& y) {
  const float* xp = x.data<float>();
  const float* rp = ep.residual ? ep.residual->data<float>() : nullptr;
  const float* mp = mean.data<float>();
  const float* sp = invstd.data<float>();
  const float* wp = weight ? weight->data<float>() : nullptr;
  const float* bp = bias ? bias->data<float>() : nullptr;
  float* yp = y.data<float>();
  const ApplyRow row = apply_row_for(rp != nullptr, ep.relu);
  parallel_for(outer * c, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      row(xp + r * inner, rp ? rp + r * inner : nullptr, yp + r * inner, inner,
          channel_affine(r % c, mp, sp, wp, bp));
  });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, int64_t outer, int64_t c,
                                     int64_t inner, const Tensor& mean, const Tensor& invstd,
                                     const Tensor* weight, const Tensor* bias,
                                     const BatchNormEpilogue& ep, bool training, Tensor& gx,
                                     Tensor* gweight, Tensor* gbias, Tensor* gresidual) {
  const float* xp = x.data<float>();
  const float* gp = gy.data<float>();
  const float* rp = ep.residual ? ep.residual->data<float>() : nullptr;
  const float* mp = mean.data<float>();
  const float* sp = invstd.data<float>();
  const float* wp = weight ? weight->data<float>() : nullptr;
  const float* bp = bias ? bias->data<float>() : nullptr;
  float* gxp = gx.data<float>();
  float* gwp = gweight ? gweight->data<float>() : nullptr;
  float* gbp = gbias ? gbias->data<float>() : nullptr;
  float* grp = gresidual ? gresidual->data<float>() : nullptr;
  const double count = static_cast<double>(outer * inner);
  // Calls body with row r's gradient functor (PlainGrad or MaskedGrad), so each loop below is
  // compiled for each case.
  auto with_grad = [&](int64_t r, auto&& body) {
    const float* g = gp + r * inner;
    if (!ep.relu) return body(PlainGrad{g});
    const ChannelAffine a = channel_affine(r % c, mp, sp, wp, bp);
    if (rp) return body(MaskedGrad<true>{xp + r * inner, rp + r * inner, g, a});
    return body(MaskedGrad<false>{xp + r * inner, nullptr, g, a});
  };
  // Two passes in memory order: per-row sums of g and g * (x - mean), combined per channel;
  // then gx. With a residual gradient to give, the first pass writes it (g itself) and the
  // second reads it back instead of recomputing the mask.
  std::vector<double> row_g(outer * c), row_gxm(outer * c);
  if (training || gwp || gbp || grp)
    parallel_for(outer * c, 8, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* __restrict p = xp + r * inner;
        const float m = mp[r % c];
        auto sums = [&](auto grad) {
          float s_g, s_gxm;
          lane_sum2(inner, [&](int64_t i) {
            const float gi = grad(i);
            return std::pair<float, float>{gi, gi * (p[i] - m)};
          }, s_g, s_gxm);
          row_g[r] = s_g;
          row_gxm[r] = s_gxm;
        };
        with_grad(r, [&](auto grad) {
          if (!grp) return sums(grad);
          float* __restrict out = grp + r * inner;
          for (int64_t i = 0; i < inner; ++i) out[i] = grad(i);
          sums(PlainGrad{out});
        });
      }
    });
  std::vector<float> scale(c), mean_g(c), k(c);  // gx = scale * (g - mean_g - (x - mean) * k)
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum_g = 0.0, sum_gxm = 0.0;
    for (int64_t o = 0; o < outer; ++o) {
      sum_g += row_g[o * c + ch];
      sum_gxm += row_gxm[o * c + ch];
    }
    const float s = sp[ch];
    const double sum_gx = sum_gxm * s;  // sum(g * xhat)
    if (gwp) gwp[ch] = static_cast<float>(sum_gx);
    if (gbp) gbp[ch] = static_cast<float>(sum_g);
    scale[ch] = (wp ? wp[ch] : 1.f) * s;
    mean_g[ch] = training ? static_cast<float>(sum_g / count) : 0.f;
    k[ch] = training ? static_cast<float>(sum_gx / count) * s : 0.f;  // mean(g*xhat) * invstd
  }
  parallel_for(outer * c, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ch = r % c;
      const float* __restrict p = xp + r * inner;
      float* __restrict q = gxp + r * inner;
      const float ws = scale[ch], mg = mean_g[ch], kk = k[ch], m = mp[ch];
      auto write = [&](auto grad) {
        if (training) {
          for (int64_t i = 0; i < inner; ++i) q[i] = ws * (grad(i) - mg - (p[i] - m) * kk);
        } else {
          for (int64_t i = 0; i < inner; ++i) q[i] = ws * grad(i);
        }
      };
      if (grp) write(PlainGrad{grp + r * inner});
      else with_grad(r, write);
    }
  });
}

void CpuBackend::layer_norm_forward(const Tensor& x, int64_t rows, int64_t n,
                                    const Tensor* weight, const Tensor* bias, float eps, Tensor& y,
                                    Tensor& mean, Tensor& invstd) {
  const float* xp = x.data<float>();
  const float* wp = weight ? weight->data<float>() : nullptr;
  const float* bp = bias ? bias->data<float>() : nullptr;
  float* yp = y.data<float>();
  float* mp = mean.data<float>();
  float* sp = invstd.data<float>();
  parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* p = xp + r * n;
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += p[i];
      double m = s / n, ss = 0.0;
      for (int64_t i = 0; i < n; ++i) ss += (p[i] - m) * (p[i] - m);
      float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
      float mf = static_cast<float>(m);
      mp[r] = mf;
      sp[r] = inv;
      float* q = yp + r * n;
      for (int64_t i = 0; i < n; ++i) {
        float v = (p[i] - mf) * inv;
        q[i] = v * (wp ? wp[i] : 1.f) + (bp ? bp[i] : 0.f);
      }
    }
  });
}

void CpuBackend::layer_norm_backward(const Tensor& x, const Tensor& gy, int64_t rows, int64_t n,
                                     const Tensor& mean, const Tensor& invstd,
                                     const Tensor* weight, Tensor& gx, Tensor* gweight,
                                     Tensor* gbias) {
  const float* xp = x.data<float>();
  const float* gp = gy.data<float>();
  const float* mp = mean.data<float>();
  const float* sp = invstd.data<float>();
  const float* wp = weight ? weight->data<float>() : nullptr;
  float* gxp = gx.data<float>();
  parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* p = xp + r * n;
      const float* g = gp + r * n;
      float* q = gxp + r * n;
      double sum_a = 0.0, sum_ax = 0.0;  // a = gy * w
      for (int64_t i = 0; i < n; ++i) {
        float a = g[i] * (wp ? wp[i] : 1.f);
        float xhat = (p[i] - mp[r]) * sp[r];
        sum_a += a;
        sum_ax += a * xhat;
      }
      float ma = static_cast<float>(sum_a / n), max_ = static_cast<float>(sum_ax / n);
      for (int64_t i = 0; i < n; ++i) {
        float a = g[i] * (wp ? wp[i] : 1.f);
        float xhat = (p[i] - mp[r]) * sp[r];
        q[i] = sp[r] * (a - ma - xhat * max_);
      }
    }
  });
  // Parameter gradients: serial over rows per column for a fixed summation order.
  if (gweight || gbias) {
    float* gw = gweight ? gweight->data<float>() : nullptr;
    float* gb = gbias ? gbias->data<float>() : nullptr;
    parallel_for(n, 64, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        double sw = 0.0, sb = 0.0;
        for (int64_t r = 0; r < rows; ++r) {
          float xhat = (xp[r * n + i] - mp[r]) * sp[r];
          sw += gp[r * n + i] * xhat;
          sb += gp[r * n + i];
        }
        if (gw) gw[i] = static_cast<float>(sw);
        if (gb) gb[i] = static_cast<float>(sb);
      }
    });
  }
}

}  // namespace shrink::cpu
