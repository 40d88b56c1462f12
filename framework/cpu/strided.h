// Iteration over a broadcast index space: calls run(out_offset, a_offset, b_offset, len) for
// contiguous runs along the last dim, so inner loops stay tight.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/core/tensor.h"

namespace shrink::cpu {

// The index space of `out` with operand strides sa and sb, simplified: size-1 dims dropped and
// neighbouring dims merged wherever both operands step through them as through one dim, so that
// runs are as long as possible (a per-channel mask [O, 1, 1, 1] broadcast to [O, I, 3, 3] is one
// run of 9*I per channel, not runs of 3). Iterating the simplified space visits the same
// elements in the same order.
struct RunSpace {
  Shape out;
  std::vector<int64_t> sa, sb;

  RunSpace(const Shape& shape, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1) continue;
      if (!out.empty() && sa.back() == a[d] * shape[d] && sb.back() == b[d] * shape[d]) {
        out.back() *= shape[d];
        sa.back() = a[d];
        sb.back() = b[d];
      } else {
        out.push_back(shape[d]);
        sa.push_back(a[d]);
        sb.push_back(b[d]);
      }
    }
    if (out.empty()) out = {1}, sa = {0}, sb = {0};
  }
  // Strides of the last (run) dim.
  int64_t step_a() const { return sa.back(); }
  int64_t step_b() const { return sb.back(); }
};

template <typename Run>
void for_each_run(const RunSpace& space, int64_t begin, int64_t end, Run run) {
  const Shape& out = space.out;
  const std::vector<int64_t>& sa = space.sa;
  const std::vector<int64_t>& sb = space.sb;
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
void parallel_runs(const RunSpace& space, Run run) {
  int64_t n = shape_numel(space.out);
  parallel_for(n, 1 << 15, [&](int64_t b, int64_t e) { for_each_run(space, b, e, run); });
}

}  // namespace shrink::cpu
