#include "compression/common/scaling.h"

#include "framework/ops/ops.h"

namespace shrink::compression {

Scaling::Scaling(std::vector<int64_t> kernel, Pad pad, int64_t pad_value)
    : kernel_(std::move(kernel)), pad_(pad), pad_value_(pad_value) {
  for (int64_t k : kernel_)
    SHRINK_CHECK(k == -1 || k >= 1, "granularity: block size ", k, " must be -1 or >= 1");
}

std::optional<Scaling> Scaling::from_granularity(const std::string& name) {
  if (name == "out_channel") return Scaling({1}, Pad::Back, -1);
  if (name == "in_channel" || name == "per_channel") return Scaling({-1, 1}, Pad::Back, -1);
  return std::nullopt;
}

std::optional<Scaling> Scaling::from_setting(const boost::json::value& g) {
  if (g.is_string()) return from_granularity(std::string(g.as_string()));
  if (!g.is_array()) return std::nullopt;
  std::vector<int64_t> blocks;
  for (const auto& b : g.as_array()) blocks.push_back(b.to_number<int64_t>());
  return from_blocks(blocks);
}

Scaling Scaling::from_blocks(std::vector<int64_t> blocks) {
  return Scaling(std::move(blocks), Pad::Front, 1);
}

std::vector<int64_t> Scaling::kernel_for(const Shape& shape) const {
  const size_t rank = shape.size();
  SHRINK_CHECK(kernel_.size() <= rank, "granularity: block ", kernel_, " has more dims than the ",
               "target ", shape);
  std::vector<int64_t> k(rank, pad_value_);
  if (pad_ == Pad::Back)
    std::copy(kernel_.begin(), kernel_.end(), k.begin());
  else
    std::copy(kernel_.begin(), kernel_.end(), k.begin() + (rank - kernel_.size()));
  for (size_t d = 0; d < rank; ++d) {
    if (k[d] == -1) k[d] = shape[d];
    SHRINK_CHECK(k[d] >= 1 && shape[d] % k[d] == 0, "granularity: dim ", d, " of target ", shape,
                 " is not divisible by block size ", k[d], " (block ", kernel_, ")");
  }
  return k;
}

Shape Scaling::shrunk_shape(const Shape& shape) const {
  std::vector<int64_t> k = kernel_for(shape);
  Shape out(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) out[d] = shape[d] / k[d];
  return out;
}

Tensor Scaling::shrink(const Tensor& t, Reduce reduce) const {
  const Shape& shape = t.shape();
  std::vector<int64_t> k = kernel_for(shape);
  const int64_t rank = static_cast<int64_t>(shape.size());
  // [d0, d1, ..] -> [d0/k0, k0, d1/k1, k1, ..]; reduce the odd (block) dims.
  Shape split;
  std::vector<int64_t> block_dims;
  for (int64_t d = 0; d < rank; ++d) {
    split.push_back(shape[d] / k[d]);
    split.push_back(k[d]);
    block_dims.push_back(2 * d + 1);
  }
  Tensor v = reshape(t, split);
  Tensor r;
  if (reduce == Reduce::Max || reduce == Reduce::Min) {
    r = v;
    for (auto it = block_dims.rbegin(); it != block_dims.rend(); ++it)
      r = reduce == Reduce::Max ? max(r, *it, true) : min(r, *it, true);
  } else if (reduce == Reduce::L1 || reduce == Reduce::L2) {
    r = norm(v, reduce == Reduce::L1 ? 1 : 2, block_dims, true);
  } else {
    r = reduce == Reduce::Mean ? mean(v, block_dims, true) : sum(v, block_dims, true);
  }
  return reshape(r, shrunk_shape(shape));
}

Tensor Scaling::expand(const Tensor& t, const Shape& shape, bool full) const {
  std::vector<int64_t> k = kernel_for(shape);
  const int64_t rank = static_cast<int64_t>(shape.size());
  Shape split, target;
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t blocks = shape[d] / k[d];
    SHRINK_CHECK(d < t.dim() && t.size(d) == blocks, "granularity: cannot expand ", t.shape(),
                 " to ", shape, " with block ", k);
    split.push_back(blocks);
    split.push_back(1);
    const bool keep_one = !full && blocks == 1;  // a whole-dim block stays broadcastable
    target.push_back(blocks);
    target.push_back(keep_one ? 1 : k[d]);
  }
  Tensor e = ::shrink::expand(reshape(t, split), target);
  Shape out;
  for (int64_t d = 0; d < rank; ++d) out.push_back(target[2 * d] * target[2 * d + 1]);
  return reshape(e, out);
}

}  // namespace shrink::compression
