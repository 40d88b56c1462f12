// SlimPruner (nni-semantics §3.2, §6.3; network slimming): every active target gets a learnable
// scaling factor per block, "<t>_slim_factor" (ones, the target's shrunk shape), multiplied into
// the target by the "slim_mul" apply method. An L1 penalty on the factors joins the training
// loss, so unimportant blocks shrink; blocks with the smallest |factor| are pruned.
//   loss += regular_scale * mean over targets of ||factor||_1
// The factors are trained by a private Adam(lr 1e-2), stepped before the user's optimizer step
// and zeroed after it. Masks are generated once after `training_steps` optimizer steps (or at
// each trigger of a Linear/AGP scheduler). Factors are not folded into the weights (NNI).
#pragma once
#include <memory>

#include "compression/pruning/training_pruner.h"
#include "framework/optim/optimizer.h"

namespace shrink::compression {

class SlimPruner : public TrainingPruner {
 public:
  SlimPruner(Host host, const boost::json::value& config_list,
             train::Trainer& trainer, int64_t training_steps, double regular_scale = 1.0);

  // "<module>.<target>_slim_factor" -> the factor (shrunk shape; shares storage).
  std::map<std::string, Tensor> factors() { return extras_named("slim_factor"); }

 protected:
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
  optim::Optimizer* extras_optimizer() override { return adam_.get(); }

 private:
  std::unique_ptr<optim::Adam> adam_;
};

}  // namespace shrink::compression
