// MovementPruner (nni-semantics §3.2, §6.3; Sanh et al., movement pruning): every active target
// gets a learnable score per block, "<t>_mvp_score" (zeros, the target's shrunk shape). The
// "movement_mul" ("movement_add" for additive masks) apply method multiplies the target by its
// mask in the forward pass and passes the gradient straight through to the score, so the score
// accumulates -dL/dw_eff * w: weights moving away from zero gain score.
// Scores are trained by a private Adam(lr 1e-2), stepped and zeroed before the user's step.
// Schedule: goals start at 0; after each optimizer step s > warmup_step the goals are scaled by
//   fraction(s) = clamp(1 - (1 - t/T)^3, 0, 1),  t = min(s - warmup, T),  T = cooldown - warmup
// and the masks regenerated (every step, also after the cooldown, where fraction = 1).
// Metric: the score for ratio targets, sigmoid(score) for threshold targets. Threshold targets
// add a regulariser pushing scores down:
//   loss += regular_scale * fraction * mean over threshold targets of sum(sigmoid(score))/numel
// Granularity "default" is out_channel, as NNI (set `granularity` explicitly for fine-grained).
#pragma once
#include <memory>

#include "compression/pruning/training_pruner.h"
#include "framework/optim/optimizer.h"

namespace shrink::compression {

class MovementPruner : public TrainingPruner {
 public:
  MovementPruner(Host host, const boost::json::value& config_list,
                 train::Trainer& trainer, int64_t warmup_step, int64_t cooldown_begin_step,
                 double regular_scale = 1.0);

  // Trains max_steps optimizer steps (at least cooldown_begin_step, so the goals are reached).
  Masks compress(int64_t max_steps);
  Masks compress() override { return compress(cooldown_); }
  using Pruner::compress;  // (max_steps, max_epochs): the fused run
  // Movement schedules its own sparsity: a Linear/AGP scheduler cannot drive it.
  void bind_schedule(int64_t interval_steps) override;

  // The goal fraction after `step` optimizer steps (0 up to warmup, 1 from cooldown on).
  static double schedule_fraction(int64_t step, int64_t warmup_step, int64_t cooldown_begin_step);
  double fraction() const { return fraction_; }
  // "<module>.<target>_mvp_score" -> the score (shrunk shape; shares storage).
  std::map<std::string, Tensor> scores() { return extras_named("mvp_score"); }

 protected:
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;
  optim::Optimizer* extras_optimizer() override { return adam_.get(); }
  void save_state(io::StateDict& out, const std::string& prefix) override;
  void load_state(const io::StateDict& in, const std::string& prefix) override;

 private:
  bool is_threshold_target(const TargetState& t) const;

  int64_t warmup_, cooldown_;
  double fraction_ = 0.0;
  std::unique_ptr<optim::Adam> adam_;
};

}  // namespace shrink::compression
