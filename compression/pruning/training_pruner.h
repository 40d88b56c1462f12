// TrainingPruner: the base of the pruners whose metric is gathered while the model trains
// through a train::Trainer (NNI's evaluator, nni-semantics §3.2 and §6.3): SlimPruner,
// TaylorPruner, MovementPruner. It holds what they share:
//   - the trainer callbacks (TrainerHooks: inert once the pruner is gone);
//   - the optimizer-step count, counted from construction (NNI counts from the pruner's own
//     registration too, not the trainer's global step);
//   - the trainable per-target extras of the slim_mul / movement_* apply methods
//     (TargetState::extras, shrunk shape, on the parameter's device);
//   - mask timing: once, after `mask_step` steps (Slim/Taylor: training_steps), or, when a
//     Linear/AGP scheduler is bound, at each of the scheduler's triggers.
// Only parameter targets can be active: these metrics are defined on weights.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compression/pruning/pruner.h"

namespace shrink::compression {

class TrainingPruner : public Pruner {
 public:
  train::Trainer* trainer() override { return &hooks().trainer(); }
  // Optimizer steps seen since construction.
  int64_t step() const { return step_; }

  // NNI's single-mode compress(): trains exactly `mask_step` steps (trainer.train(-1, steps)),
  // during which the masks are generated, and returns them.
  Masks compress() override;
  using Pruner::compress;  // (max_steps, max_epochs): the fused run

  void bind_schedule(int64_t interval_steps) override;
  void scheduled_update() override;

 protected:
  // `mask_step` < 0: the subclass decides when masks are generated (Movement).
  TrainingPruner(Host host, const boost::json::value& config_list,
                 train::Trainer& trainer, int64_t mask_step, const char* who);

  // Creates one trainable tensor per active target, filled with `init`, in the target's shrunk
  // shape (its granularity), stores it as extras[name] and sets the target's apply method to
  // `method(current apply method)`. Returns the tensors (for a private optimizer).
  std::vector<Tensor> add_extras(const std::string& name, float init,
                                 const std::function<std::string(const std::string&)>& method);
  // extras[name] of every active target, keyed "<module>.<target>_<name>" (NNI's names).
  std::map<std::string, Tensor> extras_named(const std::string& name);
  std::vector<TargetState*> active_targets();
  // Steps since the last scheduled generation (since construction when not scheduled): the
  // gathering window of Taylor.
  int64_t window_step() const { return window_; }
  bool scheduled() const { return scheduled_; }
  // Restarts the gathering after a scheduled generation (Taylor clears its sums).
  virtual void reset_gathering() {}
  // A private optimizer of the extras (Slim, Movement), whose state checkpoints carry.
  virtual optim::Optimizer* extras_optimizer() { return nullptr; }
  // Step counts and the extras optimizer, then the base's.
  void save_state(io::StateDict& out, const std::string& prefix) override;
  void load_state(const io::StateDict& in, const std::string& prefix) override;

 private:
  int64_t mask_step_;
  int64_t step_ = 0, window_ = 0;
};

}  // namespace shrink::compression
