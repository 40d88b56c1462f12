// TrainerHooks: the train::Trainer callbacks one compressor registers (NNI's evaluator patches:
// loss patch, after-backward, before/after optimizer step).
//
// It remembers what it registered, so that a fused run (compressor.h) can take every
// compressor's callbacks out and put them back newest compressor first, NNI's order (the newest
// compressor's loss patch is then the innermost, its step tasks run first).
//
// The Trainer usually outlives the compressor, so every callback checks a shared flag and does
// nothing (a loss patch returns the loss unchanged) once its owner is destroyed.
#pragma once
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "framework/train/trainer.h"

namespace shrink::compression {

class TrainerHooks {
 public:
  explicit TrainerHooks(train::Trainer& trainer)
      : trainer_(trainer), armed_(std::make_shared<bool>(true)) {}
  ~TrainerHooks() { *armed_ = false; }
  TrainerHooks(const TrainerHooks&) = delete;
  TrainerHooks& operator=(const TrainerHooks&) = delete;

  train::Trainer& trainer() const { return trainer_; }

  // Callbacks run in registration order, interleaved with every other owner's (Trainer order).
  void after_backward(std::function<void()> fn) { add(&train::Trainer::on_after_backward, std::move(fn)); }
  void before_step(std::function<void()> fn) { add(&train::Trainer::on_before_step, std::move(fn)); }
  void after_step(std::function<void()> fn) { add(&train::Trainer::on_after_step, std::move(fn)); }
  // loss -> loss + term(); the term is computed with gradients (it is part of the training loss).
  void patch_loss(std::function<Tensor(const Tensor& loss)> fn) {
    patch_loss([fn = std::move(fn)](const Tensor& loss, const data::Batch&) { return fn(loss); });
  }
  // The same with the batch being trained on (a distiller runs its teacher on it).
  void patch_loss(std::function<Tensor(const Tensor& loss, const data::Batch& batch)> fn) {
    auto patch = [armed = armed_, fn = std::move(fn)](const Tensor& loss, const data::Batch& batch) {
      return *armed ? fn(loss, batch) : loss;
    };
    keep([this, patch] { return trainer_.patch_loss(patch); });
  }

  // State saved with every checkpoint and loaded on resume (Trainer::add_state).
  void state(train::Trainer::SaveState save, train::Trainer::LoadState load) {
    train::Trainer::SaveState s = [armed = armed_, save = std::move(save)](io::StateDict& d) {
      if (*armed) save(d);
    };
    train::Trainer::LoadState l = [armed = armed_, load = std::move(load)](const io::StateDict& d) {
      if (*armed) load(d);
    };
    keep([this, s, l] { return trainer_.add_state(s, l); });
  }

  // Takes every callback out of the trainer / puts them back at the end of the trainer's lists,
  // in their original order.
  void detach() {
    for (auto id : ids_) trainer_.remove_callback(id);
    ids_.clear();
  }
  void attach() {
    detach();
    for (auto& r : registrations_) ids_.push_back(r());
  }

 private:
  using Register = train::Trainer::CallbackId (train::Trainer::*)(train::Trainer::Callback);
  void add(Register reg, std::function<void()> fn) {
    train::Trainer::Callback cb = [armed = armed_, fn = std::move(fn)](train::Trainer&) {
      if (*armed) fn();
    };
    keep([this, reg, cb] { return (trainer_.*reg)(cb); });
  }
  void keep(std::function<train::Trainer::CallbackId()> registration) {
    ids_.push_back(registration());
    registrations_.push_back(std::move(registration));
  }

  train::Trainer& trainer_;
  std::shared_ptr<bool> armed_;
  std::vector<std::function<train::Trainer::CallbackId()>> registrations_;
  std::vector<train::Trainer::CallbackId> ids_;
};

}  // namespace shrink::compression
