// Embedding lookup (gather rows of weight [rows, dim]) and its gradient (scatter-add rows of gy
// into gweight). CPU reference: CpuBackend::embedding_forward / embedding_backward
// (framework/cpu/cpu_backend.cpp). The backward is also the scatter-add behind the gradients of
// max/min/kthvalue/topk (framework/ops/reduce.cpp, with dim == 1 and flat indices).
#pragma once
#include <math.h>

#include "cuda/kernels/elementwise.cuh"
#include "cuda/launch.h"

namespace shrink::kern {

// y[i, :] = weight[index[i], :]. The CPU throws on an index outside [0, rows); the device cannot,
// so such a row of y is NaN (never a read out of bounds, never a plausible-looking value) and,
// when `bad_index` is given, the row is counted there for the host to report.
SHRINK_GLOBAL void embedding_forward_kernel(const float* weight, const int64_t* index, float* y,
                                            int64_t count, int64_t rows, int64_t dim,
                                            unsigned* bad_index) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < count * dim;
       e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t i = e / dim, j = e % dim, r = index[i];
    if (r >= 0 && r < rows) {
      y[e] = weight[r * dim + j];
    } else {
      y[e] = NAN;
      if (bad_index && j == 0) SHRINK_ATOMIC_ADD(bad_index, 1u);
    }
  }
}

// gweight[index[i], j] += gy[i, j], a thread per element of gy (gweight zeroed first). Several
// positions may carry the same index, so the additions are float atomics: on a device their
// order, and so the rounding of each sum, varies from run to run (the CPU adds in position
// order). The error of a sum of m terms is bounded by (m - 1) * eps * sum |terms| either way;
// the test's tolerance is that bound. Out-of-range indices are skipped and counted.
SHRINK_GLOBAL void embedding_backward_kernel(const float* gy, const int64_t* index,
                                             float* gweight, int64_t count, int64_t rows,
                                             int64_t dim, unsigned* bad_index) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < count * dim;
       e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t i = e / dim, j = e % dim, r = index[i];
    if (r >= 0 && r < rows)
      SHRINK_ATOMIC_ADD(gweight + r * dim + j, gy[e]);
    else if (bad_index && j == 0)
      SHRINK_ATOMIC_ADD(bad_index, 1u);
  }
}

// ---- host launchers ----
// count: number of indices; weight / gweight are [rows, dim]; bad_index: optional device
// counter (zeroed by the caller) of out-of-range indices.
inline void embedding_forward(const float* weight, const int64_t* index, float* y, int64_t count,
                              int64_t rows, int64_t dim, unsigned* bad_index = nullptr) {
  if (count * dim == 0) return;
  SHRINK_LAUNCH(embedding_forward_kernel, cuda::blocks_for(count * dim, kThreads),
                cuda::threads_1d(kThreads), 0, weight, index, y, count, rows, dim, bad_index);
}

inline void embedding_backward(const float* gy, const int64_t* index, float* gweight,
                               int64_t count, int64_t rows, int64_t dim,
                               unsigned* bad_index = nullptr) {
  fill(gweight, rows * dim, 0.f);
  if (count * dim == 0) return;
  SHRINK_LAUNCH(embedding_backward_kernel, cuda::blocks_for(count * dim, kThreads),
                cuda::threads_1d(kThreads), 0, gy, index, gweight, count, rows, dim, bad_index);
}

}  // namespace shrink::kern
