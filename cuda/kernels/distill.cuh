// Distillation losses (Backend::distill_loss): per row the KL divergence of the softened
// distributions (or the squared error) and its gradient, one block per row. CPU reference:
// CpuBackend::distill_loss (framework/cpu/cpu_distill.cpp), the same formulas with sums in double
// there and in float here; the tests bound the difference by float summation error.
#pragma once
#include <math.h>

#include "cuda/kernels/block_reduce.h"
#include "cuda/launch.h"
#include "framework/core/backend.h"

namespace shrink::kern {

SHRINK_GLOBAL void distill_kl_kernel(const float* s, const float* t, int64_t rows, int64_t n, float temperature,
                                     float* loss, float* grad) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform per block: barriers are safe
    const float* sr = s + r * n;
    const float* tr = t + r * n;
    float* gr = grad + r * n;
    float ms = -INFINITY, mt = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      ms = max_ignoring_nan(ms, sr[j] / temperature);
      mt = max_ignoring_nan(mt, tr[j] / temperature);
    }
    ms = block_max(ms, scratch);
    mt = block_max(mt, scratch);
    float ss = 0.f, st = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      ss += expf(sr[j] / temperature - ms);
      st += expf(tr[j] / temperature - mt);
    }
    ss = block_sum(ss, scratch);
    st = block_sum(st, scratch);
    const float lss = logf(ss), lst = logf(st);
    float l = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float log_ps = sr[j] / temperature - ms - lss, log_pt = tr[j] / temperature - mt - lst;
      const float pt = expf(log_pt), ps = expf(log_ps);
      if (pt > 0.f) l += pt * (log_pt - log_ps);
      gr[j] = (ps - pt) / temperature;
    }
    l = block_sum(l, scratch);
    if (threadIdx.x == 0) loss[r] = l;
  }
}

SHRINK_GLOBAL void distill_mse_kernel(const float* s, const float* t, int64_t rows, int64_t n, float* loss,
                                      float* grad) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float l = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float d = s[r * n + j] - t[r * n + j];
      l += d * d;
      grad[r * n + j] = 2.f * d;
    }
    l = block_sum(l, scratch);
    if (threadIdx.x == 0) loss[r] = l;
  }
}

inline void distill_loss(DistillLoss kind, const float* s, const float* t, int64_t rows, int64_t n,
                         float temperature, float* loss, float* grad) {
  if (rows == 0 || n == 0) return;
  if (kind == DistillLoss::Kl)
    SHRINK_LAUNCH(distill_kl_kernel, cuda::blocks_for(rows, 1), cuda::threads_1d(row_threads(n)), 0, s, t, rows, n,
                  temperature, loss, grad);
  else
    SHRINK_LAUNCH(distill_mse_kernel, cuda::blocks_for(rows, 1), cuda::threads_1d(row_threads(n)), 0, s, t, rows,
                  n, loss, grad);
}

}  // namespace shrink::kern
