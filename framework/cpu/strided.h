// Iteration over a broadcast index space: calls run(out_offset, a_offset, b_offset, len) for
// contiguous runs along the last dim, so inner loops stay tight. The space should be simplified
// first (make_broadcast's result is; simplify_index_space for others), so that runs are long.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/core/backend.h"
#include "framework/core/parallel.h"
#include "framework/core/tensor.h"

namespace shrink::cpu {

template <typename Run>
void for_each_run(const Broadcast& space, int64_t begin, int64_t end, Run run) {
  const Shape& out = space.out;
  const std::vector<int64_t>& sa = space.a_strides;
  const std::vector<int64_t>& sb = space.b_strides;
  const int64_t rank = static_cast<int64_t>(out.size());
  const int64_t last = out[rank - 1];
  if (last == 0) return;
  std::vector<int64_t> idx(rank, 0);
  int64_t rem = begin;
  for (int64_t d = rank - 1; d >= 0; --d) {
    idx[d] = rem % out[d];
    rem /= out[d];
  }
  int64_t i = begin;
  while (i < end) {
    int64_t oa = 0, ob = 0;
    for (int64_t d = 0; d < rank; ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    int64_t len = std::min(last - idx[rank - 1], end - i);
    run(i, oa, ob, len);
    i += len;
    idx[rank - 1] += len;
    for (int64_t d = rank - 1; d > 0 && idx[d] >= out[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

template <typename Run>
void parallel_runs(const Broadcast& space, Run run) {
  int64_t n = shape_numel(space.out);
  parallel_for(n, 1 << 15, [&](int64_t b, int64_t e) { for_each_run(space, b, e, run); });
}

}  // namespace shrink::cpu
