// Pruner: the base every pruner shares. It parses the config list (pruning kind), wraps the
// selected modules, and turns per-target metrics into masks through the sparse allocation
// engine. Subclasses supply only the metric (and, for training-based pruners, how it is
// gathered during training).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "compression/pruning/sparse_engine.h"
#include "compression/wrapper/module_wrapper.h"
#include "framework/nn/module.h"

namespace shrink::train {
class Trainer;
}

namespace shrink::compression {

// "<module>.<target>" -> mask in the target's full shape (f32 0/1).
using Masks = std::map<std::string, Tensor>;

class Pruner {
 public:
  Pruner(std::shared_ptr<nn::Module> model, const boost::json::value& config_list);
  virtual ~Pruner();
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  // One-shot pruners generate their masks once and return them.
  virtual Masks compress();
  // Recomputes metrics from the current values and regenerates every active target's mask.
  void generate_masks();

  Masks get_masks() const;
  // Replaces masks by key; an unknown key is an error naming the known ones. An undefined
  // tensor clears the mask.
  void update_masks(const Masks& masks);

  void unwrap();
  // Writes the masks into the weights (explicitly; unwrapping never does, DECISIONS row 12).
  void bake();

  nn::Module& model() { return *model_; }
  std::shared_ptr<nn::Module> model_ptr() { return model_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::vector<GroupReport>& global_group_reports() const { return reports_; }
  std::vector<TargetState*> targets();
  std::map<std::string, std::unique_ptr<ModuleWrapper>>& wrappers() { return wrappers_; }

  // Scheduled pruners scale the goal ratios of the bound pruner's targets (sparse_ratio,
  // sparse_threshold, min/max) by `fraction` of the values the config asked for.
  void scale_goals(double fraction);
  // The general form: every goal key set in the config becomes f(key, configured value).
  void set_goals(const std::function<double(const std::string& key, double goal)>& f);

  // ---- driven by a scheduler (LinearPruner / AGPPruner, scheduled_pruners.h) ----
  // The trainer this pruner gathers its metric with; null for one-shot pruners.
  virtual train::Trainer* trainer() { return nullptr; }
  // A scheduler takes over mask timing, triggering every `interval_steps` optimizer steps: the
  // pruner stops generating masks on its own. Pruners that cannot be scheduled throw.
  virtual void bind_schedule(int64_t interval_steps) { (void)interval_steps; }
  // Called by the scheduler at each trigger, after it has scaled the goals: regenerate the masks
  // from what was gathered so far (training-based pruners then restart their gathering).
  virtual void scheduled_update() { generate_masks(); }

 protected:
  // Importance of each block of the target's value (shrunk shape; smaller = pruned first).
  virtual Tensor metric(TargetState& t, const Tensor& value,
                        const std::optional<Scaling>& scaling) = 0;
  // What granularity "default" means for parameters ("out_channel", or "none" = element-wise).
  virtual std::string default_granularity() const { return "out_channel"; }
  // The value a metric is computed from: the parameter, or the last observed activation.
  Tensor current_value(TargetState& t);
  bool is_active(const TargetState& t) const;

  std::shared_ptr<nn::Module> model_;
  std::map<std::string, std::unique_ptr<ModuleWrapper>> wrappers_;
  std::vector<std::string> warnings_;
  std::vector<GroupReport> reports_;
  std::map<std::string, boost::json::object> goals_;  // settings as configured, by target key
};

}  // namespace shrink::compression
