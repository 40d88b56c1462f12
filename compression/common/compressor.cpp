#include "compression/common/compressor.h"

#include "framework/train/trainer.h"

namespace shrink::compression {

Compressor::Compressor(Host host, CompressorKind kind, train::Trainer* trainer, const char* who)
    : who_(who), kind_(kind), previous_(std::move(host.previous_)) {
  if (previous_) {
    model_ = previous_->model_;
    wrappers_ = previous_->wrappers_;
    train::Trainer* run = previous_->run_trainer();
    SHRINK_CHECK(!trainer || !run || trainer == run, who_, ": fused with ", previous_->name(),
                 ", which trains with another trainer; a fused run has one trainer");
  } else {
    model_ = std::move(host.model_);
    wrappers_ = std::make_shared<WrapperMap>();
  }
  SHRINK_CHECK(model_ != nullptr, who_, ": model is null");
  if (trainer) {
    SHRINK_CHECK(trainer->model_ptr().get() == model_.get(), who_, ": the trainer trains a different model than the ",
                 "one being compressed");
    hooks_ = std::make_unique<TrainerHooks>(*trainer);
    hooks_->state([this](io::StateDict& out) { save_state(out, state_prefix()); },
                  [this](const io::StateDict& in) { load_state(in, state_prefix()); });
  }
}

namespace {
// The state of a target that belongs to a compressor of `kind`, by name.
std::vector<std::pair<std::string, Tensor*>> target_state_fields(TargetState& t, CompressorKind kind) {
  std::vector<std::pair<std::string, Tensor*>> out;
  if (kind == CompressorKind::Pruning) {
    // A parameter's mask is the module buffer "<name>_mask" (saved with the model).
    if (t.kind != TargetKind::Parameter) out.emplace_back("mask", &t.mask);
    for (auto& [name, x] : t.extras) out.emplace_back("extra." + name, &x);
  } else if (kind == CompressorKind::Quantization) {
    out = {{"scale", &t.scale}, {"zero_point", &t.zero_point}, {"tracked_min", &t.tracked_min},
           {"tracked_max", &t.tracked_max}};
  }
  return out;
}
}  // namespace

void Compressor::save_state(io::StateDict& out, const std::string& prefix) {
  for (TargetState* t : targets())
    for (auto& [name, field] : target_state_fields(*t, kind_))
      if (field->defined()) out.put(prefix + t->key() + "." + name, *field);
}

void Compressor::load_state(const io::StateDict& in, const std::string& prefix) {
  for (TargetState* t : targets())
    for (auto& [name, field] : target_state_fields(*t, kind_)) {
      // Not there: the uninterrupted run had not made it yet at that step (QAT's scale before
      // quant_start_step), so neither has this one.
      const bool had = field->defined();
      if (!in.restore_if_present(prefix + t->key() + "." + name, *field)) *field = Tensor();
      // A field made now comes from the checkpoint on the CPU: put it where the model computes.
      if (!had && field->defined()) field->move_to_(model_->parameter_device());
    }
}

Compressor::~Compressor() {
  // Its own release() ran in its subclass's destructor (or its constructor failed). Only what this
  // compressor added goes: its spaces and trackers; a wrapper left without targets is unwrapped.
  // The compressors it was built on keep working (and go when their last owner does).
  for (auto& [name, w] : *wrappers_) {
    for (TargetState* t : w->targets())
      if (own_.count(t)) w->remove_space(*t, kind_, this);
    if (w->targets().empty()) w->unwrap();
  }
}

void Compressor::unwrap() {
  for (Compressor* c : fused()) c->release();
  for (auto& [name, w] : *wrappers_) w->unwrap();
}

std::vector<TargetState*> Compressor::targets() {
  std::vector<TargetState*> out;
  for (auto& [name, w] : *wrappers_)
    for (TargetState* t : w->targets())
      if (own_.count(t)) out.push_back(t);
  return out;
}

std::vector<Compressor*> Compressor::fused() {
  std::vector<Compressor*> out;
  for (Compressor* c = this; c; c = c->previous_.get()) out.push_back(c);
  return out;
}

dist::Communicator& Compressor::communicator() {
  if (comm_) return *comm_;
  if (train::Trainer* t = run_trainer()) return t->communicator();
  return *dist::world();  // the world lives until exit
}

train::Trainer* Compressor::run_trainer() {
  for (Compressor* c : fused())
    if (c->hooks_) return &c->hooks_->trainer();
  return nullptr;
}

TrainerHooks& Compressor::hooks() {
  SHRINK_CHECK(hooks_ != nullptr, who_, " needs a trainer");
  return *hooks_;
}

void Compressor::add_targets(const std::vector<TargetSpace>& spaces) {
  for (const TargetSpace& s : spaces) {
    auto& w = (*wrappers_)[s.module_name];
    if (!w) {
      auto m = model_->find(s.module_name);
      SHRINK_CHECK(m != nullptr, who_, ": model has no module '", s.module_name, "'");
      w = std::make_unique<ModuleWrapper>(s.module_name, m);
    }
    if (TargetState* existing = w->find(s.target_name))
      SHRINK_CHECK(!existing->is(kind_) || own_.count(existing),
                   who_, ": ", existing->key(), " is already compressed by another compressor of this kind in the ",
                   "fused run");
    TargetState& t = w->add_target(s, kind_);
    own_.insert(&t);
    w->wrap();
  }
}

void Compressor::run_fused(int64_t max_steps, int64_t max_epochs) {
  train::Trainer* trainer = run_trainer();
  SHRINK_CHECK(trainer != nullptr, who_, ": compress() trains, and no compressor of the run has a trainer");
  const std::vector<Compressor*> chain = fused();
  if (chain.size() > 1) {
    for (Compressor* c : chain)
      if (c->hooks_) c->hooks_->detach();
    for (Compressor* c : chain)
      if (c->hooks_) c->hooks_->attach();
  }
  for (Compressor* c : chain) c->on_run_start();
  trainer->train(max_epochs, max_steps);
  for (Compressor* c : chain) c->on_run_end();
}

}  // namespace shrink::compression
