// Selecting the blocks a ratio prunes: the k smallest values of a metric under the total order
// (value, index) of scalar::ascending_before (a NaN after every number, ties to the lower
// index). The set is a deterministic function of the values, whatever the thread count.
#pragma once
#include <cstdint>

namespace shrink::compression {

// mask[i] = 0 for the k smallest of v[0, n), 1 for the others (0 <= k <= n). `mask` may be `v`
// itself: every value is read before its position is written.
//
// Small inputs select on an index array (nth_element). Large ones (element-wise metrics, tens of
// millions of values) find the k-th smallest by radix selection on an order-preserving 32-bit
// key - three histogram passes of 11, 11 and 10 bits, in parallel over fixed chunks - then
// write the mask in one more parallel pass, pruning every smaller key and, of the keys equal to
// the k-th, the first ones in index order. Linear time, no index array.
void mark_smallest(const float* v, int64_t n, int64_t k, float* mask);

}  // namespace shrink::compression
