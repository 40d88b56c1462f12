// TaylorPruner (nni-semantics §3.2, §6.3; first-order Taylor importance, Molchanov et al.):
// after each backward while fewer than `training_steps` steps are done, every active parameter
// target accumulates (w * dL/dw)^2 per element; the metric is that sum divided by
// training_steps, reduced per block with L1 (block_l1). Masks are generated once after
// `training_steps` optimizer steps, or at each trigger of a Linear/AGP scheduler, which also
// restarts the accumulation (the first training_steps steps of each interval are gathered; the
// interval must be at least training_steps, as NNI asserts).
#pragma once
#include <map>

#include "compression/pruning/training_pruner.h"

namespace shrink::compression {

class TaylorPruner : public TrainingPruner {
 public:
  TaylorPruner(Host host, const boost::json::value& config_list,
               train::Trainer& trainer, int64_t training_steps);

  void bind_schedule(int64_t interval_steps) override;

 protected:
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
  void reset_gathering() override { sums_.clear(); }
  void save_state(io::StateDict& out, const std::string& prefix) override;
  void load_state(const io::StateDict& in, const std::string& prefix) override;
  // The after-backward callback: adds (w * grad)^2 of every active target that has a gradient.
  void accumulate();

 private:
  int64_t training_steps_;
  std::map<const TargetState*, Tensor> sums_;  // per element, the target's full shape
};

}  // namespace shrink::compression
