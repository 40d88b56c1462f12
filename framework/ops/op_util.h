// Small helpers shared by the op definitions.
#pragma once
#include "framework/core/autograd.h"
#include "framework/core/backend.h"
#include "framework/core/tensor.h"

namespace shrink::detail {

inline void check_f32(const Tensor& t, const char* op, const char* arg) {
  SHRINK_CHECK(t.defined(), op, ": ", arg, " is undefined");
  SHRINK_CHECK(t.dtype() == DType::F32, op, ": ", arg, " must be f32, got ", t.describe());
}

inline void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SHRINK_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.describe(),
               " and ", b.describe());
}

inline Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

// Splits shape around `dim` into [outer, n, inner].
struct Split3 {
  int64_t outer = 1, n = 1, inner = 1;
};
inline Split3 split_at(const Shape& s, int64_t dim) {
  Split3 r;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
    if (d < dim) r.outer *= s[d];
    else if (d == dim) r.n = s[d];
    else r.inner *= s[d];
  }
  return r;
}

// A batch norm's statistics in evaluation: the running mean, and 1 / sqrt(running var + eps)
// (norm.cpp). batch_norm and conv2d_batch_norm both take them from here, so they agree bit for bit.
struct NormStatistics {
  Tensor mean, invstd;
};
NormStatistics evaluation_statistics(const Tensor& running_mean, const Tensor& running_var, float eps);

}  // namespace shrink::detail
