// Softmax / log-softmax over x viewed as [outer, n, inner] along n, their backward, and the
// negative log-likelihood. CPU reference: CpuBackend::softmax, softmax_backward, nll_forward and
// nll_backward (framework/cpu/cpu_reduce.cpp); the formulas are the CPU's term for term.
//
// Contiguous rows (inner == 1) take one block per row: a strided pass per thread, then the warp
// shuffle / shared-memory fold of block_reduce.h. Otherwise (softmax over a non-last dim) one
// thread per (outer, inner) column walks its column: neighbouring threads read neighbouring
// addresses, so the column path is coalesced without any reduction machinery.
//
// Precision: the CPU accumulates the normaliser in double, these kernels in float (double
// throughput is a fraction of float on most GPUs and softmax is memory-bound anyway). The tests
// bound the difference by the float summation error, see kernel_cases_more.inc.
#pragma once
#include <math.h>

#include "cuda/kernels/block_reduce.h"
#include "cuda/launch.h"

namespace shrink::kern {

SHRINK_GLOBAL void softmax_rows_kernel(const float* x, float* y, int64_t rows, int64_t n,
                                       bool log) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform per block: barriers are safe
    const float* p = x + r * n;
    float* q = y + r * n;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = max_ignoring_nan(mx, p[j]);
    mx = block_max(mx, scratch);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += expf(p[j] - mx);
    s = block_sum(s, scratch);
    if (log) {
      const float lse = logf(s);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) q[j] = p[j] - mx - lse;
    } else {
      const float inv = 1.f / s;
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) q[j] = expf(p[j] - mx) * inv;
    }
  }
}

SHRINK_GLOBAL void softmax_cols_kernel(const float* x, float* y, int64_t outer, int64_t n,
                                       int64_t inner, bool log) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < outer * inner;
       c += (int64_t)blockDim.x * gridDim.x) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    const float* p = x + base;
    float* q = y + base;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = max_ignoring_nan(mx, p[j * inner]);
    float s = 0.f;
    for (int64_t j = 0; j < n; ++j) s += expf(p[j * inner] - mx);
    if (log) {
      const float lse = logf(s);
      for (int64_t j = 0; j < n; ++j) q[j * inner] = p[j * inner] - mx - lse;
    } else {
      const float inv = 1.f / s;
      for (int64_t j = 0; j < n; ++j) q[j * inner] = expf(p[j * inner] - mx) * inv;
    }
  }
}

// log:  gx = gy - exp(y) * sum(gy)        (y is log-softmax)
// else: gx = y * (gy - sum(gy * y))
SHRINK_GLOBAL void softmax_backward_rows_kernel(const float* y, const float* gy, float* gx,
                                                int64_t rows, int64_t n, bool log) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* yr = y + r * n;
    const float* gr = gy + r * n;
    float* xr = gx + r * n;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += log ? gr[j] : gr[j] * yr[j];
    s = block_sum(s, scratch);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      xr[j] = log ? gr[j] - expf(yr[j]) * s : yr[j] * (gr[j] - s);
  }
}

SHRINK_GLOBAL void softmax_backward_cols_kernel(const float* y, const float* gy, float* gx,
                                                int64_t outer, int64_t n, int64_t inner,
                                                bool log) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < outer * inner;
       c += (int64_t)blockDim.x * gridDim.x) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    float s = 0.f;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = base + j * inner;
      s += log ? gy[k] : gy[k] * y[k];
    }
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = base + j * inner;
      gx[k] = log ? gy[k] - expf(y[k]) * s : y[k] * (gy[k] - s);
    }
  }
}

// loss[r] = -logp[r, target[r]], 0 where target == ignore_index. The device cannot throw: a
// target outside [0, classes) gives loss NaN (so an unchecked bad target cannot pass for a
// plausible loss, and nothing is read out of bounds) and, when `bad_targets` is given, counts
// one there for the host to turn into an error. The CPU throws instead; the op layer is expected
// to validate targets on the host before calling.
SHRINK_GLOBAL void nll_forward_kernel(const float* logp, const int64_t* target, float* loss,
                                      int64_t rows, int64_t classes, int64_t ignore_index,
                                      unsigned* bad_targets) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)blockDim.x * gridDim.x) {
    const int64_t t = target[r];
    if (t == ignore_index) {
      loss[r] = 0.f;
    } else if (t < 0 || t >= classes) {
      loss[r] = NAN;
      if (bad_targets) SHRINK_ATOMIC_ADD(bad_targets, 1u);
    } else {
      loss[r] = -logp[r * classes + t];
    }
  }
}

// glogp[r, c] = -gloss[r] where c == target[r] (and the target is not ignored), else 0. A thread
// per element writes every element exactly once, so no separate zero fill is needed and an
// out-of-range target simply matches no column (its row of the gradient is 0).
SHRINK_GLOBAL void nll_backward_kernel(const int64_t* target, const float* gloss, float* glogp,
                                       int64_t rows, int64_t classes, int64_t ignore_index) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * classes;
       i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t r = i / classes, t = target[r];
    glogp[i] = (t != ignore_index && t == i % classes) ? -gloss[r] : 0.f;
  }
}

// ---- host launchers ----
constexpr unsigned kSoftmaxThreads = 256;

inline void softmax(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer * n * inner == 0) return;
  if (inner == 1)
    SHRINK_LAUNCH(softmax_rows_kernel, cuda::blocks_for(outer, 1),
                  cuda::threads_1d(row_threads(n, kSoftmaxThreads)), 0, x, y, outer, n, log);
  else
    SHRINK_LAUNCH(softmax_cols_kernel, cuda::blocks_for(outer * inner, kSoftmaxThreads),
                  cuda::threads_1d(kSoftmaxThreads), 0, x, y, outer, n, inner, log);
}

inline void softmax_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t n,
                             int64_t inner, bool log) {
  if (outer * n * inner == 0) return;
  if (inner == 1)
    SHRINK_LAUNCH(softmax_backward_rows_kernel, cuda::blocks_for(outer, 1),
                  cuda::threads_1d(row_threads(n, kSoftmaxThreads)), 0, y, gy, gx, outer, n, log);
  else
    SHRINK_LAUNCH(softmax_backward_cols_kernel, cuda::blocks_for(outer * inner, kSoftmaxThreads),
                  cuda::threads_1d(kSoftmaxThreads), 0, y, gy, gx, outer, n, inner, log);
}

// bad_targets: optional device counter (zeroed by the caller) of out-of-range targets.
inline void nll_forward(const float* logp, const int64_t* target, float* loss, int64_t rows,
                        int64_t classes, int64_t ignore_index, unsigned* bad_targets = nullptr) {
  if (rows == 0) return;
  SHRINK_LAUNCH(nll_forward_kernel, cuda::blocks_for(rows, kSoftmaxThreads),
                cuda::threads_1d(kSoftmaxThreads), 0, logp, target, loss, rows, classes,
                ignore_index, bad_targets);
}

inline void nll_backward(const int64_t* target, const float* gloss, float* glogp, int64_t rows,
                         int64_t classes, int64_t ignore_index) {
  if (rows * classes == 0) return;
  SHRINK_LAUNCH(nll_backward_kernel, cuda::blocks_for(rows * classes, kSoftmaxThreads),
                cuda::threads_1d(kSoftmaxThreads), 0, target, gloss, glogp, rows, classes,
                ignore_index);
}

}  // namespace shrink::kern
