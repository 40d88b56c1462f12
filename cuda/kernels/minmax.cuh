// Minimum and maximum of each row in one pass (the quantization observers' range statistics):
// one block per row, a strided per-thread pass, then block-wide max reductions (min as -max(-x))
// and a NaN count, so a row holding a NaN gives NaN for both as torch.aminmax. min and max are
// exact, so the result equals the CPU reference (CpuBackend::min_max_rows) bit for bit.
#pragma once
#include <math.h>

#include "cuda/kernels/block_reduce.h"
#include "cuda/launch.h"

namespace shrink::kern {

SHRINK_GLOBAL void min_max_rows_kernel(const float* x, int64_t rows, int64_t n, float* mn, float* mx) {
  SHRINK_SHARED_ARRAY(float, scratch, kBlockScratch);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * n;
    float lo = INFINITY, hi = -INFINITY, nans = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float v = row[j];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      nans += v != v ? 1.f : 0.f;
    }
    hi = block_max(hi, scratch);
    lo = -block_max(-lo, scratch);
    nans = block_sum(nans, scratch);
    if (threadIdx.x == 0) {
      mn[r] = nans > 0.f ? NAN : lo;
      mx[r] = nans > 0.f ? NAN : hi;
    }
  }
}

inline void min_max_rows(const float* x, int64_t rows, int64_t n, float* mn, float* mx) {
  if (rows == 0 || n == 0) return;
  SHRINK_LAUNCH(min_max_rows_kernel, cuda::blocks_for(rows, 1), cuda::threads_1d(row_threads(n)), 0, x, rows, n,
                mn, mx);
}

}  // namespace shrink::kern
