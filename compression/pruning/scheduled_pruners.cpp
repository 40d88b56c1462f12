#include "compression/pruning/scheduled_pruners.h"

#include <cmath>

namespace shrink::compression {

train::Trainer& ScheduledPruner::pick_trainer(Pruner& bound, train::Trainer* trainer, const char* who) {
  train::Trainer* own = bound.trainer();
  SHRINK_CHECK(own || trainer, who, ": the bound pruner has no trainer; pass one (the schedule ",
               "counts its optimizer steps)");
  SHRINK_CHECK(!own || !trainer || own == trainer, who, ": the trainer given differs from the ",
               "bound pruner's");
  train::Trainer& t = own ? *own : *trainer;
  SHRINK_CHECK(t.model_ptr().get() == bound.model_ptr().get(), who, ": the trainer trains a ",
               "different model than the bound pruner's");
  return t;
}

ScheduledPruner::ScheduledPruner(Pruner& bound, int64_t interval_steps, int64_t total_times,
                                 train::Trainer* trainer, Fraction fraction, const char* who)
    : bound_(bound), hooks_(pick_trainer(bound, trainer, who)), interval_(interval_steps),
      total_(total_times), fraction_fn_(fraction), who_(who) {
  SHRINK_CHECK(interval_steps > 0 && total_times > 0, who, ": interval_steps and total_times must ",
               "be positive, got ", interval_steps, " and ", total_times);
  bound_.bind_schedule(interval_steps);
  bound_.scale_goals(0.0);
  hooks_.after_step([this] {
    if (times_ >= total_ || ++counter_ < interval_) return;
    counter_ = 0;
    ++times_;
    fraction_ = fraction_fn_(times_, total_);
    bound_.scale_goals(fraction_);
    bound_.scheduled_update();
  });
  // Checkpoints: the schedule's position; the bound pruner's goals follow from it.
  const std::string prefix = std::string("schedule.") + who + ".";
  hooks_.state(
      [this, prefix](io::StateDict& out) {
        out.put_int(prefix + "counter", counter_);
        out.put_int(prefix + "times", times_);
        out.put_real(prefix + "fraction", fraction_);
        // A one-shot bound pruner registers no state of its own (it has no trainer).
        if (!bound_.run_trainer()) bound_.save_state(out, prefix + "bound.");
      },
      [this, prefix](const io::StateDict& in) {
        counter_ = in.integer(prefix + "counter");
        times_ = in.integer(prefix + "times");
        fraction_ = in.real(prefix + "fraction");
        bound_.scale_goals(fraction_);
        if (!bound_.run_trainer()) bound_.load_state(in, prefix + "bound.");
      });
}

Masks ScheduledPruner::compress(int64_t max_steps) {
  SHRINK_CHECK(max_steps >= interval_ * total_, who_, ": compress(", max_steps, ") stops before the ",
               "last trigger at step interval_steps * total_times = ", interval_ * total_);
  // A bound pruner with a trainer runs its (possibly fused, compressor.h) run; a one-shot one is
  // trained by this schedule's trainer.
  if (bound_.run_trainer()) return bound_.compress(max_steps, -1);
  hooks_.trainer().train(-1, max_steps);
  return bound_.get_masks();
}

std::vector<double> ScheduledPruner::sequence(double goal, int64_t total_times, Fraction fraction) {
  std::vector<double> out;
  for (int64_t t = 1; t <= total_times; ++t) out.push_back(goal * fraction(t, total_times));
  return out;
}

double LinearPruner::fraction(int64_t t, int64_t total_times) {
  return static_cast<double>(t) / static_cast<double>(total_times);
}

double AGPPruner::fraction(int64_t t, int64_t total_times) {
  return 1.0 - std::pow(1.0 - static_cast<double>(t) / static_cast<double>(total_times), 3);
}

}  // namespace shrink::compression
