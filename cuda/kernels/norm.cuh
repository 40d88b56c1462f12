// Batch norm (statistics, apply, backward) over x viewed as [outer, c, inner] per channel, and
// layer norm (forward, backward) over the last n elements of each row. CPU reference:
// CpuBackend::batch_norm_* and layer_norm_* (framework/cpu/cpu_pool_norm.cpp); every formula is
// the CPU's, including which quantities are rounded to float before use (the mean before the
// centred second pass, invstd * weight as one scale, ...), so the only differences are the
// float-vs-double accumulation of the sums and their order.
//
// Channel and row statistics use one block per channel / row with the deterministic block
// reductions of block_reduce.h. The layer-norm parameter gradients use one thread per column
// summing rows in order: no float atomics, so gweight/gbias are reproducible bit for bit.
#pragma once
#include <math.h>

#include "cuda/kernels/block_reduce.h"
#include "cuda/launch.h"

namespace shrink::kern {

// Element e of channel ch's outer * inner values, in the CPU's (outer, inner) order.
SHRINK_DEVICE int64_t channel_offset(int64_t e, int64_t ch, int64_t c, int64_t inner) {
  return ((e / inner) * c + ch) * inner + e % inner;
}

// mean = sum(x) / count; var = sum((x - mean)^2) / count (biased), two passes like the CPU so
// the variance does not suffer the cancellation of E[x^2] - E[x]^2.
SHRINK_GLOBAL void batch_norm_stats_kernel(const float* x, int64_t outer, int64_t c,
                                           int64_t inner, float* mean, float* var_biased) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  const int64_t count = outer * inner;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float s = 0.f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) s += x[channel_offset(e, ch, c, inner)];
    const float m = block_sum(s, scratch) / static_cast<float>(count);
    float ss = 0.f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const float d = x[channel_offset(e, ch, c, inner)] - m;
      ss += d * d;
    }
    ss = block_sum(ss, scratch);
    if (threadIdx.x == 0) {
      mean[ch] = m;
      var_biased[ch] = ss / static_cast<float>(count);
    }
  }
}

// Channel ch's normalisation plus the fused epilogue's residual (batch_norm_relu), before the
// ReLU: one explicit FMA, so the backward's recomputation below rounds exactly as the forward.
SHRINK_DEVICE float batch_norm_pre(const float* x, const float* residual, int64_t i, int64_t ch,
                                   const float* mean, const float* invstd, const float* weight,
                                   const float* bias) {
  const float scale = invstd[ch] * (weight ? weight[ch] : 1.f);
  const float shift = (bias ? bias[ch] : 0.f) - mean[ch] * scale;
  const float v = fmaf(x[i], scale, shift);
  return residual ? v + residual[i] : v;
}

// y = relu?(x * scale + shift + residual?)
SHRINK_GLOBAL void batch_norm_apply_kernel(const float* x, int64_t outer, int64_t c, int64_t inner,
                                           const float* mean, const float* invstd,
                                           const float* weight, const float* bias,
                                           const float* residual, bool relu, float* y) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < outer * c * inner;
       i += (int64_t)blockDim.x * gridDim.x) {
    const float v = batch_norm_pre(x, residual, i, (i / inner) % c, mean, invstd, weight, bias);
    y[i] = relu ? (v > 0.f ? v : 0.f) : v;
  }
}

// With the ReLU epilogue, g = gy where the recomputed pre-activation is positive (else 0), and
// gresidual = g; without it g = gy. Per channel: sum_g = sum(g), sum_gx = sum(g * (x - mean)) *
// invstd = sum(g * xhat); gweight = sum_gx, gbias = sum_g;
// training: gx = w * invstd * (g - sum_g / count - (x - mean) * (sum_gx / count) * invstd)
// eval:     gx = w * invstd * g  (the statistics are constants)
SHRINK_GLOBAL void batch_norm_backward_kernel(const float* x, const float* gy, int64_t outer,
                                              int64_t c, int64_t inner, const float* mean,
                                              const float* invstd, const float* weight,
                                              const float* bias, const float* residual, bool relu,
                                              bool training, float* gx, float* gweight,
                                              float* gbias, float* gresidual) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  const int64_t count = outer * inner;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const float m = mean[ch], s = invstd[ch];
    auto grad = [&](int64_t k) {
      if (!relu) return gy[k];
      return batch_norm_pre(x, residual, k, ch, mean, invstd, weight, bias) > 0.f ? gy[k] : 0.f;
    };
    float a = 0.f, b = 0.f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t k = channel_offset(e, ch, c, inner);
      const float g = grad(k);
      if (gresidual) gresidual[k] = g;
      a += g;
      b += g * (x[k] - m);
    }
    const float sum_g = block_sum(a, scratch);
    const float sum_gx = block_sum(b, scratch) * s;
    if (threadIdx.x == 0) {
      if (gweight) gweight[ch] = sum_gx;
      if (gbias) gbias[ch] = sum_g;
    }
    const float ws = (weight ? weight[ch] : 1.f) * s;
    const float mg = sum_g / static_cast<float>(count);
    const float kk = sum_gx / static_cast<float>(count) * s;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t k = channel_offset(e, ch, c, inner);
      const float g = gresidual ? gresidual[k] : grad(k);  // this thread wrote gresidual[k] above
      gx[k] = training ? ws * (g - mg - (x[k] - m) * kk) : ws * g;
    }
  }
}

// Per row: mean, invstd = 1 / sqrt(biased var + eps), y = (x - mean) * invstd * w + b.
SHRINK_GLOBAL void layer_norm_forward_kernel(const float* x, int64_t rows, int64_t n,
                                             const float* weight, const float* bias, float eps,
                                             float* y, float* mean, float* invstd) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* p = x + r * n;
    float* q = y + r * n;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += p[i];
    const float m = block_sum(s, scratch) / static_cast<float>(n);
    float ss = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += (p[i] - m) * (p[i] - m);
    ss = block_sum(ss, scratch);
    const float inv = 1.f / sqrtf(ss / static_cast<float>(n) + eps);
    if (threadIdx.x == 0) {
      mean[r] = m;
      invstd[r] = inv;
    }
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = (p[i] - m) * inv;
      q[i] = v * (weight ? weight[i] : 1.f) + (bias ? bias[i] : 0.f);
    }
  }
}

// gx = invstd * (a - mean(a) - xhat * mean(a * xhat)) with a = gy * w, per row.
SHRINK_GLOBAL void layer_norm_backward_kernel(const float* x, const float* gy, int64_t rows,
                                              int64_t n, const float* mean, const float* invstd,
                                              const float* weight, float* gx) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* p = x + r * n;
    const float* g = gy + r * n;
    float* q = gx + r * n;
    const float m = mean[r], s = invstd[r];
    float sa = 0.f, sax = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float a = g[i] * (weight ? weight[i] : 1.f);
      sa += a;
      sax += a * ((p[i] - m) * s);
    }
    const float ma = block_sum(sa, scratch) / static_cast<float>(n);
    const float max_ = block_sum(sax, scratch) / static_cast<float>(n);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float a = g[i] * (weight ? weight[i] : 1.f);
      const float xhat = (p[i] - m) * s;
      q[i] = s * (a - ma - xhat * max_);
    }
  }
}

// gweight[i] = sum_r gy[r, i] * xhat[r, i], gbias[i] = sum_r gy[r, i]: one thread per column,
// rows in order (adjacent threads read adjacent columns, so each row step is coalesced).
SHRINK_GLOBAL void layer_norm_param_grad_kernel(const float* x, const float* gy, int64_t rows,
                                                int64_t n, const float* mean, const float* invstd,
                                                float* gweight, float* gbias) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    float sw = 0.f, sb = 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float g = gy[r * n + i];
      sw += g * ((x[r * n + i] - mean[r]) * invstd[r]);
      sb += g;
    }
    if (gweight) gweight[i] = sw;
    if (gbias) gbias[i] = sb;
  }
}

// ---- host launchers (weight, bias, gweight, gbias may be null) ----
constexpr unsigned kNormThreads = 256;

inline void batch_norm_stats(const float* x, int64_t outer, int64_t c, int64_t inner, float* mean,
                             float* var_biased) {
  if (c == 0) return;  // count == 0 still launches: mean and var become 0/0 = NaN, as on the CPU
  SHRINK_LAUNCH(batch_norm_stats_kernel, cuda::blocks_for(c, 1),
                cuda::threads_1d(row_threads(outer * inner, kNormThreads)), 0, x, outer, c, inner,
                mean, var_biased);
}

inline void batch_norm_apply(const float* x, int64_t outer, int64_t c, int64_t inner,
                             const float* mean, const float* invstd, const float* weight,
                             const float* bias, const float* residual, bool relu, float* y) {
  const int64_t total = outer * c * inner;
  if (total == 0) return;
  SHRINK_LAUNCH(batch_norm_apply_kernel, cuda::blocks_for(total, kNormThreads),
                cuda::threads_1d(kNormThreads), 0, x, outer, c, inner, mean, invstd, weight, bias,
                residual, relu, y);
}

inline void batch_norm_backward(const float* x, const float* gy, int64_t outer, int64_t c,
                                int64_t inner, const float* mean, const float* invstd,
                                const float* weight, const float* bias, const float* residual,
                                bool relu, bool training, float* gx, float* gweight, float* gbias,
                                float* gresidual) {
  if (c == 0) return;
  SHRINK_LAUNCH(batch_norm_backward_kernel, cuda::blocks_for(c, 1),
                cuda::threads_1d(row_threads(outer * inner, kNormThreads)), 0, x, gy, outer, c,
                inner, mean, invstd, weight, bias, residual, relu, training, gx, gweight, gbias,
                gresidual);
}

inline void layer_norm_forward(const float* x, int64_t rows, int64_t n, const float* weight,
                               const float* bias, float eps, float* y, float* mean, float* invstd) {
  if (rows == 0) return;
  SHRINK_LAUNCH(layer_norm_forward_kernel, cuda::blocks_for(rows, 1),
                cuda::threads_1d(row_threads(n, kNormThreads)), 0, x, rows, n, weight, bias, eps,
                y, mean, invstd);
}

inline void layer_norm_backward(const float* x, const float* gy, int64_t rows, int64_t n,
                                const float* mean, const float* invstd, const float* weight,
                                float* gx, float* gweight, float* gbias) {
  if (rows > 0 && n > 0)
    SHRINK_LAUNCH(layer_norm_backward_kernel, cuda::blocks_for(rows, 1),
                  cuda::threads_1d(row_threads(n, kNormThreads)), 0, x, gy, rows, n, mean, invstd,
                  weight, gx);
  if ((gweight || gbias) && n > 0)  // rows == 0 still writes the (zero) parameter gradients
    SHRINK_LAUNCH(layer_norm_param_grad_kernel, cuda::blocks_for(n, kNormThreads),
                  cuda::threads_1d(kNormThreads), 0, x, gy, rows, n, mean, invstd, gweight, gbias);
}

}  // namespace shrink::kern
