// CPU kernels: pooling, batch norm, layer norm.
#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/cpu/cpu_backend.h"

namespace shrink::cpu {

void CpuBackend::max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y,
                                    Tensor& index) {
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  int64_t* ip = index.data<int64_t>();
  parallel_for(p.n * p.c, 4, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      const float* plane = xp + nc * p.h * p.w;
      for (int64_t oi = 0; oi < p.oh; ++oi) {
        for (int64_t oj = 0; oj < p.ow; ++oj) {
          int64_t i0 = oi * p.stride_h - p.pad_h, j0 = oj * p.stride_w - p.pad_w;
          float best = -INFINITY;
          int64_t arg = -1;
          for (int64_t i = std::max<int64_t>(i0, 0); i < std::min(i0 + p.kh, p.h); ++i)
            for (int64_t j = std::max<int64_t>(j0, 0); j < std::min(j0 + p.kw, p.w); ++j) {
              float v = plane[i * p.w + j];
              if (v > best || arg < 0 || std::isnan(v)) {
                if (std::isnan(best)) continue;
                best = v;
                arg = i * p.w + j;
              }
            }
          int64_t o = (nc * p.oh + oi) * p.ow + oj;
          yp[o] = best;
          ip[o] = arg;
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

void CpuBackend::batch_norm_stats(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                  Tensor& mean, Tensor& var_biased) {
  const float* xp = x.data<float>();
  float* mp = mean.data<float>();
  float* vp = var_biased.data<float>();
  const double count = static_cast<double>(outer * inner);
  parallel_for(c, 1, [&](int64_t b, int64_t e) {
    for (int64_t ch = b; ch < e; ++ch) {
      double s = 0.0;
      for (int64_t o = 0; o < outer; ++o) {
        const float* p = xp + (o * c + ch) * inner;
        for (int64_t i = 0; i < inner; ++i) s += p[i];
      }
      double m = s / count, ss = 0.0;
      for (int64_t o = 0; o < outer; ++o) {
        const float* p = xp + (o * c + ch) * inner;
        for (int64_t i = 0; i < inner; ++i) ss += (p[i] - m) * (p[i] - m);
      }
      mp[ch] = static_cast<float>(m);
      vp[ch] = static_cast<float>(ss / count);
    }
  });
}

void CpuBackend::batch_norm_apply(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                  const Tensor& mean, const Tensor& invstd, const Tensor* weight,
                                  const Tensor* bias, Tensor& y) {
  const float* xp = x.data<float>();
  const float* mp = mean.data<float>();
  const float* sp = invstd.data<float>();
  const float* wp = weight ? weight->data<float>() : nullptr;
  const float* bp = bias ? bias->data<float>() : nullptr;
  float* yp = y.data<float>();
  parallel_for(outer * c, 8, [&](int64_t b, int64_t e) {
    for (int64_t oc = b; oc < e; ++oc) {
      int64_t ch = oc % c;
      float scale = sp[ch] * (wp ? wp[ch] : 1.f);
      float shift = (bp ? bp[ch] : 0.f) - mp[ch] * scale;
      const float* p = xp + oc * inner;
      float* q = yp + oc * inner;
      for (int64_t i = 0; i < inner; ++i) q[i] = p[i] * scale + shift;
    }
  });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, int64_t outer, int64_t c,
                                     int64_t inner, const Tensor& mean, const Tensor& invstd,
                                     const Tensor* weight, bool training, Tensor& gx,
                                     Tensor* gweight, Tensor* gbias) {
  const float* xp = x.data<float>();
  const float* gp = gy.data<float>();
  const float* mp = mean.data<float>();
  const float* sp = invstd.data<float>();
  const float* wp = weight ? weight->data<float>() : nullptr;
  float* gxp = gx.data<float>();
  float* gwp = gweight ? gweight->data<float>() : nullptr;
  float* gbp = gbias ? gbias->data<float>() : nullptr;
  const double count = static_cast<double>(outer * inner);
  parallel_for(c, 1, [&](int64_t b, int64_t e) {
    for (int64_t ch = b; ch < e; ++ch) {
      double sum_g = 0.0, sum_gx = 0.0;  // sum(gy), sum(gy * xhat)
      const float m = mp[ch], s = sp[ch];
      for (int64_t o = 0; o < outer; ++o) {
        const float* p = xp + (o * c + ch) * inner;
        const float* g = gp + (o * c + ch) * inner;
        for (int64_t i = 0; i < inner; ++i) {
          sum_g += g[i];
          sum_gx += g[i] * (p[i] - m) * s;
        }
      }
      if (gwp) gwp[ch] = static_cast<float>(sum_gx);
      if (gbp) gbp[ch] = static_cast<float>(sum_g);
      const float w = wp ? wp[ch] : 1.f;
      const float mg = static_cast<float>(sum_g / count), mgx = static_cast<float>(sum_gx / count);
      for (int64_t o = 0; o < outer; ++o) {
        const float* p = xp + (o * c + ch) * inner;
        const float* g = gp + (o * c + ch) * inner;
        float* q = gxp + (o * c + ch) * inner;
        if (training) {
          for (int64_t i = 0; i < inner; ++i) {
            float xhat = (p[i] - m) * s;
            q[i] = w * s * (g[i] - mg - xhat * mgx);
          }
        } else {
          for (int64_t i = 0; i < inner; ++i) q[i] = w * s * g[i];
        }
      }
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
