// A small persistent thread pool with static partitioning: a range is always split the same way
// for a given thread count, so results (including partial sums) are bitwise reproducible.
#pragma once
#include <cstdint>
#include <functional>

namespace shrink {

// Number of worker threads used by parallel_for (default: SHRINK_NUM_THREADS or the core count).
int num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks covering [0, n). Runs inline when n < 2 * grain or
// when already inside a parallel region. Chunk c of T covers [c*n/T, (c+1)*n/T).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(chunk, begin, end) for exactly `chunks` static chunks (some may be empty); used where
// per-chunk partial results are combined afterwards in chunk order.
void parallel_chunks(int64_t n, int chunks,
                     const std::function<void(int, int64_t, int64_t)>& fn);

}  // namespace shrink
