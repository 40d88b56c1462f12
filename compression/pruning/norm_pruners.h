// The one-shot magnitude pruners (nni-semantics §3.2): LevelPruner (|w|, element-wise by
// default), L1NormPruner (sum |w| per block), L2NormPruner (sqrt of sum w^2 per block) and
// FPGMPruner (each block's summed distance to every other block of the same target: blocks near
// the geometric median are redundant and pruned first).
#pragma once
#include "compression/pruning/pruner.h"

namespace shrink::compression {

class LevelPruner : public Pruner {
 public:
  LevelPruner(Host host, const boost::json::value& config_list)
      : Pruner(std::move(host), config_list, nullptr, "LevelPruner") {}

 protected:
  std::string default_granularity() const override { return "none"; }
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
};

class L1NormPruner : public Pruner {
 public:
  L1NormPruner(Host host, const boost::json::value& config_list)
      : Pruner(std::move(host), config_list, nullptr, "L1NormPruner") {}

 protected:
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
};

class L2NormPruner : public Pruner {
 public:
  L2NormPruner(Host host, const boost::json::value& config_list)
      : Pruner(std::move(host), config_list, nullptr, "L2NormPruner") {}

 protected:
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
};

class FPGMPruner : public Pruner {
 public:
  FPGMPruner(Host host, const boost::json::value& config_list)
      : Pruner(std::move(host), config_list, nullptr, "FPGMPruner") {}

 protected:
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
};

// Block-wise norms, shared by the norm pruners and the training-based ones that reduce a
// per-element score over blocks.
Tensor block_l1(const Tensor& value, const std::optional<Scaling>& s);
Tensor block_l2(const Tensor& value, const std::optional<Scaling>& s);
// FPGM distances: for blocks b_i (flattened), m_i = sum_j ||b_i - b_j||_2, computed in row
// chunks of the Gram matrix so memory stays O(chunk * blocks), not O(blocks^2).
Tensor fpgm_metric(const Tensor& value, const Scaling& s);

}  // namespace shrink::compression
