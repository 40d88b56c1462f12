#include "compression/pruning/norm_pruners.h"

#include <cmath>

#include "framework/ops/ops.h"

namespace shrink::compression {

Tensor block_l1(const Tensor& value, const std::optional<Scaling>& s) {
  return s ? s->shrink(value, Scaling::Reduce::L1) : abs(value);
}

Tensor block_l2(const Tensor& value, const std::optional<Scaling>& s) {
  return s ? s->shrink(value, Scaling::Reduce::L2) : abs(value);
}

Tensor fpgm_metric(const Tensor& value, const Scaling& s) {
  // Rows of `blocks` are the flattened blocks: permute each dim's block part last, as shrink().
  const Shape& shape = value.shape();
  std::vector<int64_t> k = s.kernel_for(shape);
  Shape split;
  std::vector<int64_t> perm_outer, perm_inner;
  for (size_t d = 0; d < shape.size(); ++d) {
    split.push_back(shape[d] / k[d]);
    split.push_back(k[d]);
    perm_outer.push_back(static_cast<int64_t>(2 * d));
    perm_inner.push_back(static_cast<int64_t>(2 * d + 1));
  }
  std::vector<int64_t> perm = perm_outer;
  perm.insert(perm.end(), perm_inner.begin(), perm_inner.end());
  Shape shrunk = s.shrunk_shape(shape);
  const int64_t nblocks = shape_numel(shrunk);
  const int64_t bsize = nblocks ? value.numel() / nblocks : 0;
  // A view when the blocks are already rows (out_channel: permute only moves size-1 dims).
  Tensor blocks = reshape(permute(reshape(value, split), perm), {nblocks, bsize});
  std::vector<float> norms = norm(blocks, 2, {1}).to_vector();
  // ||bi - bj||^2 = |bi|^2 + |bj|^2 - 2 bi.bj, clamped at 0 against round-off. The Gram matrix is
  // symmetric: each pair is computed once (row chunk [r0, r1) against blocks [r0, n)) and added
  // to both sums, which still receive their terms in increasing j.
  std::vector<double> acc(nblocks, 0.0);
  const int64_t chunk = 256;
  for (int64_t r0 = 0; r0 < nblocks; r0 += chunk) {
    const int64_t r1 = std::min(nblocks, r0 + chunk), cols = nblocks - r0;
    Tensor gram = linear(slice(blocks, 0, r0, r1), slice(blocks, 0, r0, nblocks)).to(Device::CPU);
    const float* g = gram.data<float>();
    for (int64_t i = r0; i < r1; ++i) {
      const double sq_i = static_cast<double>(norms[i]) * norms[i];
      for (int64_t j = i + 1; j < nblocks; ++j) {
        const double d2 = sq_i + static_cast<double>(norms[j]) * norms[j] - 2.0 * g[(i - r0) * cols + (j - r0)];
        const double d = std::sqrt(std::max(d2, 0.0));
        acc[i] += d;
        acc[j] += d;
      }
    }
  }
  std::vector<float> out(acc.begin(), acc.end());
  return Tensor::from_vector(out, shrunk).to(value.device());
}

Tensor LevelPruner::metric(TargetState&, const Tensor& value, const std::optional<Scaling>& s) {
  return s ? s->shrink(value, Scaling::Reduce::L1) : abs(value);
}

Tensor L1NormPruner::metric(TargetState&, const Tensor& value, const std::optional<Scaling>& s) {
  return block_l1(value, s);
}

Tensor L2NormPruner::metric(TargetState&, const Tensor& value, const std::optional<Scaling>& s) {
  return block_l2(value, s);
}

Tensor FPGMPruner::metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) {
  SHRINK_CHECK(s.has_value(), t.key(), ": FPGM needs a block granularity (its metric compares ",
               "blocks; element-wise pruning is not supported)");
  return fpgm_metric(value, *s);
}

}  // namespace shrink::compression
