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

#include "compression/common/compressor.h"
#include "compression/pruning/sparse_engine.h"

namespace shrink::compression {

// "<module>.<target>" -> mask in the target's full shape (f32 0/1).
using Masks = std::map<std::string, Tensor>;

class Pruner : public Compressor {
 public:
  // One-shot pruners generate their masks once and return them.
  virtual Masks compress();
  // The fused run (compressor.h) this pruner is the newest of: trains every compressor of the
  // run and returns the masks.
  Masks compress(int64_t max_steps, int64_t max_epochs);
  // Recomputes metrics from the current values and regenerates every active target's mask.
  void generate_masks();

  Masks get_masks();
  // Replaces masks by key; an unknown key is an error naming the known ones. An undefined
  // tensor clears the mask.
  void update_masks(const Masks& masks);

  // Writes the masks into the weights (explicitly; unwrapping never does, DECISIONS row 12).
  void bake();

  const std::vector<GroupReport>& global_group_reports() const { return reports_; }

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
  virtual void bind_schedule(int64_t interval_steps) {
    (void)interval_steps;
    scheduled_ = true;
  }
  // Called by the scheduler at each trigger, after it has scaled the goals: regenerate the masks
  // from what was gathered so far (training-based pruners then restart their gathering).
  virtual void scheduled_update() { generate_masks(); }

 protected:
  Pruner(Host host, const boost::json::value& config_list, train::Trainer* trainer, const char* who);
  // DECISIONS row 11: in a fused run a one-shot pruner (no trainer, not scheduled) computes its
  // masks once when the run starts.
  void on_run_start() override;

  // Importance of each block of the target's value (shrunk shape; smaller = pruned first).
  virtual Tensor metric(TargetState& t, const Tensor& value,
                        const std::optional<Scaling>& scaling) = 0;
  // What granularity "default" means for parameters ("out_channel", or "none" = element-wise).
  virtual std::string default_granularity() const { return "out_channel"; }
  // The value a metric is computed from: the parameter, or the last observed activation.
  Tensor current_value(TargetState& t);
  // Under data parallelism: stops with an error naming `key` unless every rank holds `mask`.
  void check_same_on_every_rank(const std::string& key, const Tensor& mask);
  bool is_active(const TargetState& t) const;

  std::vector<GroupReport> reports_;
  bool scheduled_ = false;
  std::map<std::string, boost::json::object> goals_;  // settings as configured, by target key
};

}  // namespace shrink::compression
