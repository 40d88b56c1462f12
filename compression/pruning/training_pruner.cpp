#include "compression/pruning/training_pruner.h"

#include "framework/ops/ops.h"

namespace shrink::compression {

TrainingPruner::TrainingPruner(Host host, const boost::json::value& config_list, train::Trainer& trainer,
                               int64_t mask_step, const char* who)
    : Pruner(std::move(host), config_list, &trainer, who), mask_step_(mask_step) {
  for (TargetState* t : targets())
    SHRINK_CHECK(!is_active(*t) || t->kind == TargetKind::Parameter, who_, ": ", t->key(),
                 " is an activation target; this pruner's metric is defined on parameters only");
  hooks().after_step([this] {
    ++step_;
    ++window_;
    if (!scheduled_ && mask_step_ > 0 && step_ == mask_step_) generate_masks();
  });
}

Masks TrainingPruner::compress() {
  SHRINK_CHECK(mask_step_ > 0, who_, ": compress() needs a positive step count");
  return Pruner::compress(mask_step_, -1);
}

void TrainingPruner::bind_schedule(int64_t interval_steps) {
  SHRINK_CHECK(interval_steps > 0, who_, ": schedule interval must be positive, got ", interval_steps);
  Pruner::bind_schedule(interval_steps);
  window_ = 0;
}

void TrainingPruner::scheduled_update() {
  generate_masks();
  reset_gathering();
  window_ = 0;
}

void TrainingPruner::save_state(io::StateDict& out, const std::string& prefix) {
  Pruner::save_state(out, prefix);
  out.put_int(prefix + "step", step_);
  out.put_int(prefix + "window", window_);
  if (optim::Optimizer* o = extras_optimizer()) o->save_state(out, prefix + "extras_optim.");
}

void TrainingPruner::load_state(const io::StateDict& in, const std::string& prefix) {
  Pruner::load_state(in, prefix);
  step_ = in.integer(prefix + "step");
  window_ = in.integer(prefix + "window");
  if (optim::Optimizer* o = extras_optimizer()) o->load_state(in, prefix + "extras_optim.");
}

std::vector<TargetState*> TrainingPruner::active_targets() {
  std::vector<TargetState*> out;
  for (TargetState* t : targets())
    if (is_active(*t)) out.push_back(t);
  return out;
}

std::vector<Tensor> TrainingPruner::add_extras(
    const std::string& name, float init, const std::function<std::string(const std::string&)>& method) {
  std::vector<Tensor> out;
  for (TargetState* t : active_targets()) {
    Tensor value = wrapper(t->module_name).module().param(t->name);
    if (!value.defined()) continue;  // an absent optional parameter
    std::optional<Scaling> s = scaling_for(*t, default_granularity());
    Shape shape = s ? s->shrunk_shape(value.shape()) : value.shape();
    Tensor extra = Tensor::full(shape, init, value.device());
    extra.set_requires_grad(true);
    t->extras[name] = extra;
    auto& settings = t->spaces.at(CompressorKind::Pruning).settings;
    settings["apply_method"] = method(std::string(settings.at("apply_method").as_string()));
    out.push_back(extra);
  }
  return out;
}

std::map<std::string, Tensor> TrainingPruner::extras_named(const std::string& name) {
  std::map<std::string, Tensor> out;
  for (TargetState* t : active_targets()) {
    auto it = t->extras.find(name);
    if (it != t->extras.end()) out[t->key() + "_" + name] = it->second;
  }
  return out;
}

}  // namespace shrink::compression
