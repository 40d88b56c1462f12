#include "compression/pruning/taylor_pruner.h"

#include "compression/pruning/norm_pruners.h"
#include "framework/core/autograd.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

TaylorPruner::TaylorPruner(Host host, const boost::json::value& config_list,
                           train::Trainer& trainer, int64_t training_steps)
    : TrainingPruner(std::move(host), config_list, trainer, training_steps, "TaylorPruner"),
      training_steps_(training_steps) {
  SHRINK_CHECK(training_steps > 0, "TaylorPruner: training_steps must be positive, got ", training_steps);
  hooks().after_backward([this] {
    if (window_step() < training_steps_) accumulate();
  });
}

void TaylorPruner::accumulate() {
  NoGradGuard ng;
  for (TargetState* t : active_targets()) {
    nn::Module& m = wrapper(t->module_name).module();
    if (!m.has_parameter(t->name)) continue;
    const Tensor& w = m.parameter(t->name);
    Tensor g = w.defined() ? w.grad() : Tensor();
    if (!g.defined()) continue;
    Tensor wg = mul(w.detach(), g);
    Tensor sq = mul(wg, wg);
    auto it = sums_.find(t);
    if (it == sums_.end()) sums_[t] = sq.contiguous_copy();
    else it->second = add(it->second, sq);
  }
}

void TaylorPruner::bind_schedule(int64_t interval_steps) {
  SHRINK_CHECK(interval_steps >= training_steps_, "TaylorPruner: a schedule interval of ",
               interval_steps, " steps is shorter than training_steps ", training_steps_,
               " (the scores of each interval are gathered over training_steps steps)");
  TrainingPruner::bind_schedule(interval_steps);
  sums_.clear();
}

Tensor TaylorPruner::metric(TargetState& t, const Tensor&, const std::optional<Scaling>& s) {
  auto it = sums_.find(&t);
  SHRINK_CHECK(it != sums_.end(), "TaylorPruner: no gradient was gathered for ", t.key(),
               " (masks need at least one training step with a backward pass through it)");
  return block_l1(mul(it->second, 1.f / static_cast<float>(training_steps_)), s);
}

void TaylorPruner::save_state(io::StateDict& out, const std::string& prefix) {
  TrainingPruner::save_state(out, prefix);
  for (auto& [t, sum] : sums_) out.put(prefix + t->key() + ".taylor_sum", sum);
}

void TaylorPruner::load_state(const io::StateDict& in, const std::string& prefix) {
  TrainingPruner::load_state(in, prefix);
  sums_.clear();
  for (TargetState* t : targets()) {
    Tensor sum;
    if (in.restore_if_present(prefix + t->key() + ".taylor_sum", sum)) sums_[t] = t->mask.defined() ? sum.to(t->mask.device()) : sum;
  }
}

}  // namespace shrink::compression
