// LinearPruner and AGPPruner (nni-semantics §3.2 "Scheduled", §6.3): drive a bound pruner
// (Level/L1/L2/FPGM, Slim, Taylor) towards its configured goals in `total_times` steps of
// `interval_steps` optimizer steps each. At construction the bound pruner's goals become 0 and
// it hands its mask timing over (Pruner::bind_schedule). After every `interval_steps` steps,
// until `total_times` triggers are done (t = triggers so far), the goals are scaled by
//   Linear: t / T          AGP: 1 - (1 - t/T)^3          (T = total_times)
// and the bound pruner regenerates its masks (Pruner::scheduled_update); the last trigger
// reaches the configured goals exactly.
//
// Differs from NNI in one case: NNI lets a bound Taylor pruner generate at step training_steps
// of each interval, with the goals of the previous trigger, so with training_steps < interval
// the final goals are never applied. Here the masks are always regenerated at the trigger, from
// the scores of that interval.
//
// The trainer is the bound pruner's when it has one (training-based pruners), else `trainer`. A
// bound pruner built on other compressors (fusion, compressor.h) trains with them: compress()
// runs the bound pruner's fused run, with this schedule's step task before theirs (NNI's order).
// The bound pruner must outlive the scheduler.
#pragma once
#include <cstdint>
#include <vector>

#include "compression/pruning/pruner.h"
#include "compression/common/trainer_hooks.h"

namespace shrink::compression {

class ScheduledPruner {
 public:
  virtual ~ScheduledPruner() = default;
  ScheduledPruner(const ScheduledPruner&) = delete;
  ScheduledPruner& operator=(const ScheduledPruner&) = delete;

  // Trains max_steps optimizer steps (at least interval_steps * total_times) and returns the
  // bound pruner's masks.
  Masks compress(int64_t max_steps);

  Pruner& bound() { return bound_; }
  train::Trainer& trainer() { return hooks_.trainer(); }
  int64_t times_done() const { return times_; }
  // The goal fraction applied at the last trigger (0 before the first).
  double current_fraction() const { return fraction_; }

 protected:
  using Fraction = double (*)(int64_t t, int64_t total_times);
  ScheduledPruner(Pruner& bound, int64_t interval_steps, int64_t total_times, train::Trainer* trainer,
                  Fraction fraction, const char* who);
  // goal * fraction(t, T) for t = 1..T.
  static std::vector<double> sequence(double goal, int64_t total_times, Fraction fraction);

 private:
  static train::Trainer& pick_trainer(Pruner& bound, train::Trainer* trainer, const char* who);

  Pruner& bound_;
  TrainerHooks hooks_;
  int64_t interval_, total_;
  Fraction fraction_fn_;
  const char* who_;
  int64_t counter_ = 0, times_ = 0;
  double fraction_ = 0.0;
};

class LinearPruner : public ScheduledPruner {
 public:
  LinearPruner(Pruner& bound, int64_t interval_steps, int64_t total_times, train::Trainer* trainer = nullptr)
      : ScheduledPruner(bound, interval_steps, total_times, trainer, &fraction, "LinearPruner") {}
  static double fraction(int64_t t, int64_t total_times);
  // The sparsity a target with goal `goal` gets at triggers 1..total_times.
  static std::vector<double> sparsity_sequence(double goal, int64_t total_times) {
    return sequence(goal, total_times, &fraction);
  }
};

class AGPPruner : public ScheduledPruner {
 public:
  AGPPruner(Pruner& bound, int64_t interval_steps, int64_t total_times, train::Trainer* trainer = nullptr)
      : ScheduledPruner(bound, interval_steps, total_times, trainer, &fraction, "AGPPruner") {}
  static double fraction(int64_t t, int64_t total_times);
  static std::vector<double> sparsity_sequence(double goal, int64_t total_times) {
    return sequence(goal, total_times, &fraction);
  }
};

}  // namespace shrink::compression
