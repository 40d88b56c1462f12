#include "compression/pruning/pruner.h"

#include "compression/config/config_list.h"
#include "framework/core/autograd.h"
#include "framework/ops/ops.h"
#include "framework/train/progress.h"

namespace shrink::compression {

namespace {
const char* kGoalKeys[] = {"sparse_ratio", "sparse_threshold", "max_sparse_ratio", "min_sparse_ratio"};
}

Pruner::Pruner(Host host, const boost::json::value& config_list, train::Trainer* trainer, const char* who)
    : Compressor(std::move(host), CompressorKind::Pruning, trainer, who) {
  add_targets(config::parse_config_list(*model_, config_list, CompressorKind::Pruning, &warnings_));
  for (TargetState* t : targets()) {
    // Activation targets keep their last value for metrics computed from them.
    if (t->kind == TargetKind::Input || t->kind == TargetKind::Output)
      t->trackers.push_back({this, [](TargetState& s, const Tensor& v) { s.observed = v.detach(); }});
    goals_[t->key()] = t->settings(CompressorKind::Pruning);
  }
}

void Pruner::on_run_start() {
  if (!scheduled_ && trainer() == nullptr) compress();
}

Masks Pruner::compress(int64_t max_steps, int64_t max_epochs) {
  run_fused(max_steps, max_epochs);
  return get_masks();
}

bool Pruner::is_active(const TargetState& t) const {
  const auto& s = t.settings(CompressorKind::Pruning);
  for (const char* k : {"sparse_ratio", "sparse_threshold"}) {
    auto it = s.find(k);
    if (it != s.end() && !it->value().is_null()) return true;
  }
  return false;
}

Tensor Pruner::current_value(TargetState& t) {
  if (t.kind == TargetKind::Parameter || t.kind == TargetKind::Buffer)
    return wrapper(t.module_name).module().param(t.name).detach();
  SHRINK_CHECK(t.observed.defined(), t.key(), ": an activation target needs a forward pass before ",
               "its mask can be computed (run the model on an input first)");
  return t.observed;
}

void Pruner::generate_masks() {
  NoGradGuard ng;
  std::vector<EngineTarget> engine;
  progress::Bar bar("masks", static_cast<int64_t>(targets().size()));
  for (TargetState* t : targets()) {
    bar.step(t->key());
    EngineTarget e;
    e.state = t;
    e.scaling = scaling_for(*t, default_granularity());
    if (is_active(*t)) {
      Tensor v = current_value(*t);
      if (!v.defined()) continue;  // e.g. a bias=None module
      e.metric = metric(*t, v, e.scaling);
    }
    engine.push_back(std::move(e));
  }
  EngineResult r = compression::generate_masks(engine);
  reports_ = r.global_groups;
  for (auto& e : engine) {
    auto it = r.masks.find(e.state->key());
    if (it == r.masks.end()) continue;
    check_same_on_every_rank(e.state->key(), it->second);
    wrapper(e.state->module_name).set_mask(*e.state, it->second);
  }
}

// NNI's masks can differ between data-parallel ranks (its #5205); these cannot: a mask that does
// stops the run, naming the target.
void Pruner::check_same_on_every_rank(const std::string& key, const Tensor& mask) {
  dist::Communicator& comm = communicator();
  if (comm.size() == 1) return;
  if (!mask.defined()) return dist::check_identical(comm, "the mask of " + key + " (cleared)", nullptr, 0);
  const Tensor host = mask.to(Device::CPU).contiguous_copy();
  dist::check_identical(comm, "the mask of " + key, host.raw_data(),
                        host.numel() * static_cast<int64_t>(dtype_size(host.dtype())));
}

Masks Pruner::compress() {
  generate_masks();
  return get_masks();
}

Masks Pruner::get_masks() {
  Masks out;
  for (TargetState* t : targets())
    if (t->mask.defined()) {
      // Snapshots (copy-on-write): later mask updates leave the caller's masks as they were, as
      // NNI's clones do, without copying the masks now.
      const Tensor& m = t->mask;
      out[t->key()] = !t->shape_known || m.shape() == t->shape ? m.snapshot() : expand(m, t->shape);
    }
  return out;
}

void Pruner::update_masks(const Masks& masks) {
  for (const auto& [key, mask] : masks) {
    TargetState& found = find_target(targets(), key, "update_masks");
    check_same_on_every_rank(key, mask);
    wrapper(found.module_name).set_mask(found, mask);
  }
}

void Pruner::bake() {
  for (auto& [name, w] : wrappers()) w->bake(false);
}

void Pruner::scale_goals(double fraction) {
  set_goals([fraction](const std::string&, double goal) { return goal * fraction; });
}

void Pruner::set_goals(const std::function<double(const std::string& key, double goal)>& f) {
  for (TargetState* t : targets()) {
    auto& s = t->spaces.at(CompressorKind::Pruning).settings;
    const auto& goal = goals_.at(t->key());
    for (const char* k : kGoalKeys) {
      auto it = goal.find(k);
      if (it == goal.end() || it->value().is_null()) continue;
      s[k] = f(k, it->value().to_number<double>());
    }
  }
}

}  // namespace shrink::compression
