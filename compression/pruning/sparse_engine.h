// The sparse allocation engine shared by every pruner (nni-semantics §3.1): given one metric per
// active target (in the target's shrunk block shape; smaller = less important), it produces
// 0/1 masks in NNI's order — threshold targets, dependency groups, global groups, per-target
// ratios, then aligned targets — AND-combined with the masks already present.
//
// Rounding and ties: the number of pruned blocks is floor(ratio * blocks) (per row of
// internal_metric_block); among equal metric values the lower flat index is pruned first, and
// across the targets of a global group the earlier target (config order) first. This makes every
// mask a deterministic function of the metrics.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compression/common/scaling.h"
#include "compression/wrapper/target_state.h"

namespace shrink::compression {

struct EngineTarget {
  TargetState* state = nullptr;
  Tensor metric;                  // shrunk shape (undefined for align-only targets)
  std::optional<Scaling> scaling;  // granularity (none = element-wise)
};

struct GroupReport {
  std::string group_id;
  int64_t wanted = 0;  // elements the group's sparse_ratio asks for
  int64_t pruned = 0;  // elements actually pruned within the members' bounds
};

struct EngineResult {
  // Masks by TargetState::key(), each in a shape that broadcasts to its target's (a whole-dim
  // block stays size 1: [O, 1, 1, 1] for out_channel); ModuleWrapper::set_mask broadcasts them.
  std::map<std::string, Tensor> masks;
  std::vector<GroupReport> global_groups;  // shortfalls are reported, not hidden (DECISIONS 21)
};

// The scaling of a target's granularity setting ("default" resolves per pruner: `default_`).
std::optional<Scaling> scaling_for(const TargetState& t, const std::string& default_granularity);

// Runs the five rules. Targets without a metric take part only through `align`. The engine may
// release a target's metric once it has used it (per-target ratios write their mask over a
// metric that nothing else holds).
EngineResult generate_masks(std::vector<EngineTarget>& targets);

// ratio_mask on a flat metric viewed as `rows` rows: per row, the floor(n_row * ratio) smallest
// (value, index) entries get 0. Exposed for tests.
std::vector<float> ratio_mask(const std::vector<float>& metric, double ratio, int64_t rows = 1);

}  // namespace shrink::compression
