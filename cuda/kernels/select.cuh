// Selection along rows of x [rows, n]: kth_value (the k-th smallest, 1-based, with its index)
// and topk (the k largest or smallest, sorted). CPU reference: CpuBackend::kth_value / topk
// (framework/cpu/cpu_reduce.cpp), which order elements by (value, index): among equal values the
// lower index ranks first (for topk largest: value descending, then index ascending).
//
// One block per row (32..256 threads, by row length), O(n) work per pass and O(1) shared memory,
// so rows of millions (pruning thresholds over a whole weight tensor) work:
//   1. Radix select on the order-preserving uint32 key of each value: four passes, one per
//      8-bit digit from the top, each a 256-bin shared histogram (shared atomics) of the
//      elements whose key matches the digits chosen so far; thread 0 picks the bin holding the
//      wanted rank. After the fourth pass the key K of the wanted element and its rank among the
//      elements with key K are known.
//   2. Ties resolved by index: each thread counts the elements with key K in its contiguous
//      segment of the row; a prefix over the per-thread counts (in index order) names the
//      segment, and its thread finds the element. This gives exactly the CPU's (value, index)
//      order.
// topk then gathers the k elements ranked at or before that boundary into the output (slots
// taken with a shared atomic counter, so in arbitrary order) and sorts them in place with a
// block-wide bitonic sort by (key, index): a strict total order, so the result is unique and
// deterministic whatever order the gather produced.
//
// Keys: -0.0 and +0.0 compare equal on the CPU, so both map to the key of +0.0 (the tie then
// goes by index, as on the CPU); every NaN maps to the largest key. The CPU's comparator is not
// a strict weak order with NaN, so NaN rows have no CPU reference; here NaN ranks above +inf,
// as in PyTorch.
#pragma once
#include "cuda/kernels/block_reduce.h"
#include "cuda/launch.h"
#include "framework/core/error.h"

namespace shrink::kern {

constexpr unsigned kSelectBins = 256;     // one per value of an 8-bit digit
constexpr unsigned kSelectThreads = 256;  // most threads per row (<= kSelectBins: tie counts)

// Monotone map float -> uint32 (a < b  <=>  key(a) < key(b) for non-NaN values): flip the sign
// bit of non-negative values, invert all bits of negative ones. `descending` inverts the key so
// the same ascending selection serves topk(largest).
SHRINK_DEVICE uint32_t order_key(float f, bool descending) {
  uint32_t u;
  if (f != f) {
    u = 0xFFFFFFFFu;
  } else {
    u = SHRINK_FLOAT_AS_UINT(f == 0.f ? 0.f : f);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  return descending ? ~u : u;
}

struct Boundary {
  uint32_t key;   // the order key of the element ranked k
  int64_t index;  // its index in the row
};

// The element ranked k (1-based, 1 <= k <= n) in (order_key, index) order. Shared scratch from
// the kernel: hist[kSelectBins] (histogram, then per-thread tie counts) and bcast[3]. All
// threads of the block must call it; blockDim.x <= kSelectBins.
SHRINK_DEVICE Boundary select_rank(const float* row, int64_t n, int64_t k, bool descending,
                                   unsigned* hist, int64_t* bcast) {
  uint32_t prefix = 0, mask = 0;
  int64_t rank = k;  // rank among the elements matching prefix under mask
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (unsigned i = threadIdx.x; i < kSelectBins; i += blockDim.x) hist[i] = 0;
    SHRINK_SYNCTHREADS();
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const uint32_t u = order_key(row[j], descending);
      if ((u & mask) == prefix) SHRINK_ATOMIC_ADD(&hist[(u >> shift) & 0xFFu], 1u);
    }
    SHRINK_SYNCTHREADS();
    if (threadIdx.x == 0) {
      int64_t before = 0;
      unsigned d = 0;
      for (; d + 1 < kSelectBins; ++d) {  // the last bin takes whatever is left
        if (before + hist[d] >= rank) break;
        before += hist[d];
      }
      bcast[0] = d;
      bcast[1] = rank - before;
    }
    SHRINK_SYNCTHREADS();
    prefix |= static_cast<uint32_t>(bcast[0]) << shift;
    mask |= 0xFFu << shift;
    rank = bcast[1];
    // No barrier here: bcast is next written after two more barriers, and the next pass may
    // clear hist at once because thread 0 finished reading it before the barrier above.
  }

  // Ties: the rank-th element with key == prefix, in index order.
  const int64_t seg = (n + blockDim.x - 1) / blockDim.x;
  const int64_t b = threadIdx.x * seg;
  const int64_t e = b + seg < n ? b + seg : n;
  unsigned count = 0;
  for (int64_t j = b; j < e; ++j) count += order_key(row[j], descending) == prefix;
  hist[threadIdx.x] = count;
  SHRINK_SYNCTHREADS();
  if (threadIdx.x == 0) {
    int64_t before = 0;
    unsigned t = 0;
    for (; t + 1 < blockDim.x; ++t) {
      if (before + hist[t] >= rank) break;
      before += hist[t];
    }
    bcast[0] = t;
    bcast[1] = rank - before;
  }
  SHRINK_SYNCTHREADS();
  if (threadIdx.x == bcast[0]) {
    int64_t left = bcast[1], found = b;
    for (int64_t j = b; j < e; ++j)
      if (order_key(row[j], descending) == prefix && --left == 0) {
        found = j;
        break;
      }
    bcast[2] = found;  // a separate slot: other threads may still be reading bcast[0..1]
  }
  SHRINK_SYNCTHREADS();
  return {prefix, bcast[2]};
}

SHRINK_GLOBAL void kth_value_kernel(const float* x, int64_t rows, int64_t n, int64_t k,
                                    float* out, int64_t* index) {
  SHRINK_SHARED_ARRAY(unsigned, hist, kSelectBins);
  SHRINK_SHARED_ARRAY(int64_t, bcast, 3);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * n;
    const Boundary bd = select_rank(row, n, k, false, hist, bcast);
    if (threadIdx.x == 0) {
      out[r] = row[bd.index];
      index[r] = bd.index;
    }
  }
}

// a before b in (order_key, index) order.
SHRINK_DEVICE bool ranks_before(const float* row, int64_t a, int64_t b, bool descending) {
  const uint32_t ka = order_key(row[a], descending), kb = order_key(row[b], descending);
  return ka < kb || (ka == kb && a < b);
}

// Sorts the row indices idx[0, k) by rank, in place in global memory. The bitonic network's
// variant in which every comparator points the same way (a "flip" step, then half-cleaners)
// sorts any k: positions >= k act as +infinity, which no comparator would move, so comparisons
// reaching past k are simply skipped. log2(k)^2 / 2 steps with a barrier after each; block
// barriers also order global memory within the block.
SHRINK_DEVICE void bitonic_sort_indices(const float* row, int64_t* idx, int64_t k,
                                        bool descending) {
  int64_t p2 = 1;
  while (p2 < k) p2 <<= 1;
  for (int64_t size = 2; size <= p2; size <<= 1) {
    for (int64_t stride = size / 2; stride > 0; stride >>= 1) {
      const bool flip = stride == size / 2;
      for (int64_t t = threadIdx.x; t < p2 / 2; t += blockDim.x) {
        const int64_t blk = t / stride, off = t % stride;
        const int64_t a = blk * 2 * stride + off;
        const int64_t b = flip ? blk * 2 * stride + 2 * stride - 1 - off : a + stride;
        if (b < k && ranks_before(row, idx[b], idx[a], descending)) {
          const int64_t tmp = idx[a];
          idx[a] = idx[b];
          idx[b] = tmp;
        }
      }
      SHRINK_SYNCTHREADS();
    }
  }
}

SHRINK_GLOBAL void topk_kernel(const float* x, int64_t rows, int64_t n, int64_t k, bool largest,
                               float* values, int64_t* index) {
  SHRINK_SHARED_ARRAY(unsigned, hist, kSelectBins);
  SHRINK_SHARED_ARRAY(int64_t, bcast, 3);
  SHRINK_SHARED_ARRAY(unsigned, slot, 1);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = x + r * n;
    int64_t* idx = index + r * k;
    float* val = values + r * k;
    if (threadIdx.x == 0) slot[0] = 0;  // published by select_rank's barriers
    const Boundary bd = select_rank(row, n, k, largest, hist, bcast);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const uint32_t u = order_key(row[j], largest);
      if (u < bd.key || (u == bd.key && j <= bd.index)) idx[SHRINK_ATOMIC_ADD(&slot[0], 1u)] = j;
    }
    SHRINK_SYNCTHREADS();
    bitonic_sort_indices(row, idx, k, largest);
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) val[j] = row[idx[j]];
    // The next row's first barrier (in select_rank) comes before anyone touches slot again.
  }
}

// ---- host launchers (k is validated here: it is a host value, unlike the data) ----
inline void kth_value(const float* x, int64_t rows, int64_t n, int64_t k, float* out,
                      int64_t* index) {
  if (rows == 0) return;
  SHRINK_CHECK(k >= 1 && k <= n, "kth_value: k = ", k, " out of range for rows of ", n);
  SHRINK_LAUNCH(kth_value_kernel, cuda::blocks_for(rows, 1),
                cuda::threads_1d(row_threads(n, kSelectThreads)), 0, x, rows, n, k, out, index);
}

// values and index are [rows, k].
inline void topk(const float* x, int64_t rows, int64_t n, int64_t k, bool largest, float* values,
                 int64_t* index) {
  if (rows == 0 || k == 0) return;
  SHRINK_CHECK(k >= 1 && k <= n, "topk: k = ", k, " out of range for rows of ", n);
  SHRINK_LAUNCH(topk_kernel, cuda::blocks_for(rows, 1),
                cuda::threads_1d(row_threads(n, kSelectThreads)), 0, x, rows, n, k, largest, values,
                index);
}

}  // namespace shrink::kern
