// Reductions of x viewed as [outer, n, inner] along n (sum, mean, sum of |x| or x*x, max, min
// with arg index).
// Contiguous rows (inner == 1) use one block per row: a strided per-thread pass, a warp
// shuffle tree, then one warp over the per-warp partials in shared memory. Otherwise one thread
// per output element walks its column. CPU reference: CpuBackend::reduce (sums in double there,
// in float here: tests compare with a tolerance proportional to sqrt(n)).
#pragma once
#include "cuda/launch.h"
#include "framework/core/backend.h"

namespace shrink::kern {

// Combines (value, index) candidates: for max/min the better value wins, ties and NaN as CPU:
// a NaN wins; among equal values the lower index wins.
SHRINK_DEVICE void pick(ReduceOp op, float& v, int64_t& i, float ov, int64_t oi) {
  bool v_nan = v != v, o_nan = ov != ov;
  bool take;
  if (v_nan || o_nan)
    take = o_nan && (!v_nan || oi < i);
  else if (op == ReduceOp::Max)
    take = ov > v || (ov == v && oi < i);
  else
    take = ov < v || (ov == v && oi < i);
  if (take) {
    v = ov;
    i = oi;
  }
}

// The term a sum reduction adds for element v.
SHRINK_DEVICE float sum_term(ReduceOp op, float v) {
  return op == ReduceOp::SumAbs ? fabsf(v) : op == ReduceOp::SumSquares ? v * v : v;
}

SHRINK_GLOBAL void reduce_rows_kernel(ReduceOp op, const float* x, int64_t rows, int64_t n,
                                      float* out, int64_t* index) {
  SHRINK_SHARED_ARRAY(float, warp_val, 32);
  SHRINK_SHARED_ARRAY(int, warp_idx_lo, 32);
  SHRINK_SHARED_ARRAY(int, warp_idx_hi, 32);
  const bool is_sum = op != ReduceOp::Max && op != ReduceOp::Min;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * n;
    float v = is_sum ? 0.f : row[0];
    int64_t idx = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      if (is_sum)
        v += sum_term(op, row[j]);
      else
        pick(op, v, idx, row[j], j);
    }
    // Warp tree.
    for (unsigned d = 16; d > 0; d >>= 1) {
      float ov = SHRINK_SHFL_DOWN(v, d);
      int lo = SHRINK_SHFL_DOWN(static_cast<int>(idx & 0xffffffff), d);
      int hi = SHRINK_SHFL_DOWN(static_cast<int>(idx >> 32), d);
      int64_t oi = (static_cast<int64_t>(hi) << 32) | static_cast<uint32_t>(lo);
      bool valid = (threadIdx.x % 32) + d < 32 && threadIdx.x + d < blockDim.x;
      if (valid) {
        if (is_sum)
          v += ov;
        else
          pick(op, v, idx, ov, oi);
      }
    }
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const unsigned nwarps = (blockDim.x + 31) / 32;
    if (lane == 0) {
      warp_val[warp] = v;
      warp_idx_lo[warp] = static_cast<int>(idx & 0xffffffff);
      warp_idx_hi[warp] = static_cast<int>(idx >> 32);
    }
    SHRINK_SYNCTHREADS();
    if (threadIdx.x == 0) {
      float acc = warp_val[0];
      int64_t ai = (static_cast<int64_t>(warp_idx_hi[0]) << 32) | static_cast<uint32_t>(warp_idx_lo[0]);
      for (unsigned w = 1; w < nwarps; ++w) {
        int64_t wi = (static_cast<int64_t>(warp_idx_hi[w]) << 32) | static_cast<uint32_t>(warp_idx_lo[w]);
        if (is_sum)
          acc += warp_val[w];
        else
          pick(op, acc, ai, warp_val[w], wi);
      }
      out[r] = op == ReduceOp::Mean ? acc / static_cast<float>(n) : acc;
      if (index && !is_sum) index[r] = ai;
    }
    SHRINK_SYNCTHREADS();  // shared partials are reused by the next row
  }
}

SHRINK_GLOBAL void reduce_cols_kernel(ReduceOp op, const float* x, int64_t outer, int64_t n,
                                      int64_t inner, float* out, int64_t* index) {
  const bool is_sum = op != ReduceOp::Max && op != ReduceOp::Min;
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < outer * inner;
       r += (int64_t)blockDim.x * gridDim.x) {
    const float* p = x + (r / inner) * n * inner + r % inner;
    float v = is_sum ? 0.f : p[0];
    int64_t idx = 0;
    for (int64_t j = is_sum ? 0 : 1; j < n; ++j) {
      if (is_sum)
        v += sum_term(op, p[j * inner]);
      else
        pick(op, v, idx, p[j * inner], j);
    }
    out[r] = op == ReduceOp::Mean ? v / static_cast<float>(n) : v;
    if (index && !is_sum) index[r] = idx;
  }
}

inline void reduce(ReduceOp op, const float* x, int64_t outer, int64_t n, int64_t inner,
                   float* out, int64_t* index) {
  if (outer * inner == 0 || n == 0) return;
  if (inner == 1) {
    SHRINK_LAUNCH(reduce_rows_kernel, cuda::blocks_for(outer, 1), cuda::threads_1d(256), 0, op, x,
                  outer, n, out, index);
  } else {
    SHRINK_LAUNCH(reduce_cols_kernel, cuda::blocks_for(outer * inner, 256), cuda::threads_1d(256), 0,
                  op, x, outer, n, inner, out, index);
  }
}

}  // namespace shrink::kern
