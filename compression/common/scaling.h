// Granularity as block reduction and expansion (NNI's Scaling): a kernel size per dim, where -1
// means "the whole dim". shrink() reduces every block to one value (keeping dims, so the result
// broadcasts against the target); expand() repeats each value back over its block.
//
// Granularity names (nni-semantics §2.5, DECISIONS row 10):
//   out_channel  -> kernel [1, -1, -1, ...]   one value per dim 0 (parameters)
//   in_channel   -> kernel [-1, 1, -1, ...]   one value per dim 1 (parameters)
//   per_channel  -> kernel [-1, 1, -1, ...]   one value per dim 1 of activations (dim 0 = batch)
//   [k0, k1, ..] -> the trailing dims, front-padded with 1: block sparsity / block quantization
//   none         -> element-wise (no scaling)
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::compression {

class Scaling {
 public:
  enum class Pad { Front, Back };
  // kernel is padded to the tensor's rank: Back appends `pad_value` (default -1), Front
  // prepends it (default 1).
  Scaling(std::vector<int64_t> kernel, Pad pad, int64_t pad_value);

  // Scaling for a named granularity ("out_channel", "in_channel", "per_channel") or a block
  // list; nullopt for element-wise.
  static std::optional<Scaling> from_granularity(const std::string& name);
  // A canonical `granularity` setting: a name (as from_granularity; "default" and null give
  // nullopt, the caller decides what default means) or a block list.
  static std::optional<Scaling> from_setting(const boost::json::value& granularity);
  static Scaling from_blocks(std::vector<int64_t> blocks);

  // The kernel for a tensor of this shape (-1 resolved to the dim size).
  std::vector<int64_t> kernel_for(const Shape& shape) const;
  // Shape of shrink()'s result with keepdim: shape[d] / kernel[d].
  Shape shrunk_shape(const Shape& shape) const;

  // L1: sum of |x|; L2: sqrt of the sum of x^2 (one pass over t, see norm()).
  enum class Reduce { Mean, Sum, L1, L2, Max, Min };
  // Reduces each block (differentiable). Requires every dim divisible by its kernel.
  Tensor shrink(const Tensor& t, Reduce reduce) const;
  // Repeats each value of `t` (shrunk shape) over its block to `shape`. With full=false, dims
  // whose kernel covers the whole dim stay size 1 (broadcastable).
  Tensor expand(const Tensor& t, const Shape& shape, bool full = true) const;

  const std::vector<int64_t>& kernel() const { return kernel_; }

 private:
  std::vector<int64_t> kernel_;
  Pad pad_;
  int64_t pad_value_;
};

}  // namespace shrink::compression
