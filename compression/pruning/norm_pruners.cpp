#include "compression/pruning/norm_pruners.h"

#include <cmath>

#include "framework/ops/ops.h"

namespace shrink::compression {

Tensor block_l1(const Tensor& value, const std::optional<Scaling>& s) {
  return s ? s->shrink(value, Scaling::Reduce::SumAbs) : abs(value);
}

Tensor block_l2(const Tensor& value, const std::optional<Scaling>& s) {
  return s ? sqrt(s->shrink(value, Scaling::Reduce::SumSquares)) : abs(value);
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
  Tensor blocks = reshape(permute(reshape(value, split), perm), {nblocks, bsize});
  std::vector<float> sq = sum(mul(blocks, blocks), {1}).to_vector();
  std::vector<float> out(nblocks, 0.f);
  const int64_t chunk = 256;
  for (int64_t r0 = 0; r0 < nblocks; r0 += chunk) {
    const int64_t r1 = std::min(nblocks, r0 + chunk);
    // ||bi - bj||^2 = |bi|^2 + |bj|^2 - 2 bi.bj, clamped at 0 against round-off.
    std::vector<float> gram = matmul(slice(blocks, 0, r0, r1), transpose(blocks, 0, 1)).to_vector();
    for (int64_t i = r0; i < r1; ++i) {
      double acc = 0.0;
      for (int64_t j = 0; j < nblocks; ++j) {
        if (j == i) continue;
        double d2 = static_cast<double>(sq[i]) + sq[j] - 2.0 * gram[(i - r0) * nblocks + j];
        acc += std::sqrt(std::max(d2, 0.0));
      }
      out[i] = static_cast<float>(acc);
    }
  }
  return Tensor::from_vector(out, shrunk).to(value.device());
}

Tensor LevelPruner::metric(TargetState&, const Tensor& value, const std::optional<Scaling>& s) {
  return s ? s->shrink(value, Scaling::Reduce::SumAbs) : abs(value);
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
