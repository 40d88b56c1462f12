#include "compression/pruning/movement_pruner.h"

#include <algorithm>
#include <cmath>

#include "framework/ops/ops.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

MovementPruner::MovementPruner(Host host, const boost::json::value& config_list,
                               train::Trainer& trainer, int64_t warmup_step, int64_t cooldown_begin_step,
                               double regular_scale)
    : TrainingPruner(std::move(host), config_list, trainer, -1, "MovementPruner"),
      warmup_(warmup_step), cooldown_(cooldown_begin_step) {
  SHRINK_CHECK(0 <= warmup_step && warmup_step < cooldown_begin_step, "MovementPruner: need 0 <= ",
               "warmup_step < cooldown_begin_step, got ", warmup_step, " and ", cooldown_begin_step);
  scale_goals(0.0);
  std::vector<Tensor> scores = add_extras("mvp_score", 0.f, [](const std::string& m) {
    return m == "add" || m == "movement_add" ? "movement_add" : "movement_mul";
  });
  adam_ = std::make_unique<optim::Adam>(scores, 1e-2f);
  trainer.add_reduced_parameters(who_, scores);  // stepped by adam_, averaged across ranks
  hooks().before_step([this] {
    adam_->step();
    adam_->zero_grad();
  });
  hooks().after_step([this] {
    if (step() <= warmup_) return;
    fraction_ = schedule_fraction(step(), warmup_, cooldown_);
    scale_goals(fraction_);
    generate_masks();
  });
  std::vector<Tensor> thr;
  for (TargetState* t : active_targets())
    if (is_threshold_target(*t) && t->extras.count("mvp_score")) thr.push_back(t->extras.at("mvp_score"));
  if (thr.empty()) return;
  const double scale = regular_scale / static_cast<double>(thr.size());
  hooks().patch_loss([this, thr, scale](const Tensor& loss) {
    if (fraction_ == 0.0) return loss;  // the term is zero until the schedule starts
    Tensor reg = mul(sum(sigmoid(thr[0])), 1.f / static_cast<float>(thr[0].numel()));
    for (size_t i = 1; i < thr.size(); ++i)
      reg = add(reg, mul(sum(sigmoid(thr[i])), 1.f / static_cast<float>(thr[i].numel())));
    return add(loss, mul(reg, static_cast<float>(scale * fraction_)));
  });
}

double MovementPruner::schedule_fraction(int64_t step, int64_t warmup, int64_t cooldown) {
  if (step <= warmup) return 0.0;
  const double total = static_cast<double>(cooldown - warmup);
  const double t = static_cast<double>(std::min(step - warmup, cooldown - warmup));
  return std::clamp(1.0 - std::pow(1.0 - t / total, 3), 0.0, 1.0);
}

Masks MovementPruner::compress(int64_t max_steps) {
  SHRINK_CHECK(max_steps >= cooldown_, "MovementPruner: compress(", max_steps, ") stops before ",
               "cooldown_begin_step ", cooldown_, ", so the configured sparsity would not be reached");
  return Pruner::compress(max_steps, -1);
}

void MovementPruner::bind_schedule(int64_t) {
  fail("MovementPruner schedules its own sparsity (warmup_step .. cooldown_begin_step); it cannot ",
       "be driven by LinearPruner/AGPPruner");
}

bool MovementPruner::is_threshold_target(const TargetState& t) const {
  const auto& goal = goals_.at(t.key());
  auto it = goal.find("sparse_threshold");
  return it != goal.end() && !it->value().is_null();
}

Tensor MovementPruner::metric(TargetState& t, const Tensor&, const std::optional<Scaling>&) {
  const Tensor& score = t.extras.at("mvp_score");
  return is_threshold_target(t) ? sigmoid(score).detach() : score.detach().contiguous_copy();
}

void MovementPruner::save_state(io::StateDict& out, const std::string& prefix) {
  TrainingPruner::save_state(out, prefix);
  out.put_real(prefix + "fraction", fraction_);
}

void MovementPruner::load_state(const io::StateDict& in, const std::string& prefix) {
  TrainingPruner::load_state(in, prefix);
  fraction_ = in.real(prefix + "fraction");
  scale_goals(fraction_);
}

}  // namespace shrink::compression
