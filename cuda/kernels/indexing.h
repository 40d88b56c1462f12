// Plain-data index descriptors passed by value to kernels (no pointers, fixed maximum rank),
// and the host functions that build them from shapes and strides.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::kern {

constexpr int kMaxRank = 8;

// A shape and, per operand, its strides in that shape's index space (0 on broadcast dims).
struct StridedIndex {
  int rank = 0;
  int64_t shape[kMaxRank];
  int64_t a[kMaxRank];
  int64_t b[kMaxRank];
};

// For sum_to: output elements are the kept dims of the gradient; each sums the reduced dims.
struct SumToIndex {
  int out_rank = 0;
  int64_t out_shape[kMaxRank];
  int64_t out_to_grad[kMaxRank];  // gradient stride of each kept dim
  int nreduced = 0;
  int64_t red_shape[kMaxRank];
  int64_t red_stride[kMaxRank];  // gradient stride of each reduced dim
};

inline StridedIndex make_strided(const Shape& shape, const std::vector<int64_t>& a,
                                 const std::vector<int64_t>& b) {
  SHRINK_CHECK(static_cast<int>(shape.size()) <= kMaxRank, "CUDA kernels support rank <= ",
               kMaxRank, ", got shape ", shape);
  StridedIndex s;
  s.rank = static_cast<int>(shape.size());
  for (int d = 0; d < s.rank; ++d) {
    s.shape[d] = shape[d];
    s.a[d] = d < static_cast<int>(a.size()) ? a[d] : 0;
    s.b[d] = d < static_cast<int>(b.size()) ? b[d] : 0;
  }
  return s;
}

// grad_shape: the gradient's shape; out_strides: the output's stride per gradient dim (0 where
// the dim is summed away).
inline SumToIndex make_sum_to(const Shape& grad_shape, const std::vector<int64_t>& out_strides) {
  SHRINK_CHECK(static_cast<int>(grad_shape.size()) <= kMaxRank, "CUDA sum_to supports rank <= ",
               kMaxRank, ", got ", grad_shape);
  SumToIndex s;
  const int rank = static_cast<int>(grad_shape.size());
  std::vector<int64_t> gstride(rank, 1);
  for (int d = rank - 2; d >= 0; --d) gstride[d] = gstride[d + 1] * grad_shape[d + 1];
  for (int d = 0; d < rank; ++d) {
    bool reduced = out_strides[d] == 0 && grad_shape[d] != 1;
    if (reduced) {
      s.red_shape[s.nreduced] = grad_shape[d];
      s.red_stride[s.nreduced] = gstride[d];
      ++s.nreduced;
    } else {
      s.out_shape[s.out_rank] = grad_shape[d];
      s.out_to_grad[s.out_rank] = gstride[d];
      ++s.out_rank;
    }
  }
  return s;
}

}  // namespace shrink::kern
