// TrainerHooks: the train::Trainer callbacks a compressor registers (NNI's evaluator patches:
// loss patch, after-backward, before/after optimizer step). The Trainer cannot remove a callback
// and usually outlives the compressor, so every callback registered here checks a shared flag
// and does nothing (a loss patch returns the loss unchanged) once its owner is destroyed.
#pragma once
#include <functional>
#include <memory>
#include <utility>

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
  void after_backward(std::function<void()> fn) { trainer_.on_after_backward(guard(std::move(fn))); }
  void before_step(std::function<void()> fn) { trainer_.on_before_step(guard(std::move(fn))); }
  void after_step(std::function<void()> fn) { trainer_.on_after_step(guard(std::move(fn))); }
  // loss -> loss + term(); the term is computed with gradients (it is part of the training loss).
  void patch_loss(std::function<Tensor(const Tensor& loss)> fn) {
    trainer_.patch_loss([armed = armed_, fn = std::move(fn)](const Tensor& loss, const data::Batch&) {
      return *armed ? fn(loss) : loss;
    });
  }
  // The same with the batch being trained on (a distiller runs its teacher on it).
  void patch_loss(std::function<Tensor(const Tensor& loss, const data::Batch& batch)> fn) {
    trainer_.patch_loss([armed = armed_, fn = std::move(fn)](const Tensor& loss, const data::Batch& batch) {
      return *armed ? fn(loss, batch) : loss;
    });
  }

 private:
  train::Trainer::Callback guard(std::function<void()> fn) {
    return [armed = armed_, fn = std::move(fn)](train::Trainer&) {
      if (*armed) fn();
    };
  }

  train::Trainer& trainer_;
  std::shared_ptr<bool> armed_;
};

}  // namespace shrink::compression
