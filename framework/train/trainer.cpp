#include "framework/train/trainer.h"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <ostream>

#include "framework/core/autograd.h"
#include "framework/ops/ops.h"

namespace shrink::train {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
int64_t correct_count(const Tensor& logits, const Tensor& labels) {
  std::vector<int64_t> pred = argmax(logits.detach(), 1).to_vector_i64();
  std::vector<int64_t> y = labels.to_vector_i64();
  int64_t c = 0;
  for (size_t i = 0; i < y.size(); ++i) c += pred[i] == y[i];
  return c;
}
}  // namespace

Trainer::Trainer(std::shared_ptr<nn::Module> model, std::shared_ptr<optim::Optimizer> optimizer,
                 std::shared_ptr<data::DataLoader> train_loader,
                 std::shared_ptr<data::DataLoader> eval_loader, LossFn loss)
    : model_(std::move(model)), optimizer_(std::move(optimizer)),
      train_loader_(std::move(train_loader)), eval_loader_(std::move(eval_loader)),
      loss_fn_(std::move(loss)) {
  SHRINK_CHECK(model_ && optimizer_ && train_loader_, "Trainer: model, optimizer and training "
               "loader are required");
  if (!loss_fn_)
    loss_fn_ = [](const Tensor& out, const Tensor& y) { return cross_entropy(out, y); };
}

void Trainer::progress(int64_t done, int64_t total, double loss, double seconds) {
  if (!log_ || !tty_) return;
  const int width = 30;
  int filled = total > 0 ? static_cast<int>(width * done / total) : width;
  *log_ << "\r  [" << std::string(filled, '=') << std::string(width - filled, ' ') << "] " << done
        << "/" << total << " loss " << std::fixed << std::setprecision(4) << loss << " "
        << std::setprecision(1) << seconds << "s" << std::flush;
}

std::vector<EpochStats> Trainer::train(int64_t max_epochs, int64_t max_steps) {
  SHRINK_CHECK(max_epochs >= 0 || max_steps >= 0, "Trainer::train: give max_epochs or max_steps");
  std::vector<EpochStats> history;
  int64_t steps_this_call = 0;
  for (int64_t e = 0; max_epochs < 0 || e < max_epochs; ++e) {
    if (max_steps >= 0 && steps_this_call >= max_steps) break;
    model_->train(true);
    train_loader_->start_epoch();
    EpochStats st;
    st.epoch = epochs_done_;
    auto t0 = Clock::now();
    double loss_sum = 0.0;
    int64_t batches = 0, correct = 0, seen = 0;
    const int64_t total = train_loader_->num_batches();
    while (train_loader_->next(batch_)) {
      if (max_steps >= 0 && steps_this_call >= max_steps) break;
      Tensor x = batch_.inputs.to(device_), y = batch_.labels.to(device_);
      Tensor out = (*model_)(x);
      loss_ = loss_fn_(out, y);
      for (auto& p : loss_patches_) loss_ = p(loss_, batch_);
      optimizer_->zero_grad();
      loss_.backward();
      for (auto& cb : after_backward_) cb(*this);
      for (auto& cb : before_step_) cb(*this);
      optimizer_->step();
      ++global_step_;
      ++steps_this_call;
      for (auto& cb : after_step_) cb(*this);
      double l = loss_.item();
      loss_sum += l;
      ++batches;
      correct += correct_count(out, batch_.labels);
      seen += batch_.labels.numel();
      progress(batches, total, loss_sum / batches, seconds_since(t0));
    }
    if (log_ && tty_) *log_ << "\n";
    SHRINK_CHECK(batches > 0 || (max_steps >= 0 && steps_this_call >= max_steps),
                 "Trainer::train: the training loader yielded no batch (empty dataset, or "
                 "drop_last with fewer examples than a batch)");
    st.seconds = seconds_since(t0);
    st.loss = batches ? loss_sum / batches : 0.0;
    st.train_accuracy = seen ? static_cast<double>(correct) / seen : 0.0;
    st.samples_per_s = st.seconds > 0 ? seen / st.seconds : 0.0;
    if (scheduler_) scheduler_->step();
    if (eval_loader_) {
      EvalResult r = evaluate(*eval_loader_);
      st.test_accuracy = r.accuracy;
      st.test_loss = r.loss;
    }
    ++epochs_done_;
    history.push_back(st);
    for (auto& cb : epoch_end_) cb(*this, st);
  }
  return history;
}

EvalResult Trainer::evaluate(data::DataLoader& loader) {
  NoGradGuard ng;
  bool was_training = model_->is_training();
  model_->eval();
  EvalResult r;
  double loss_sum = 0.0;
  int64_t correct = 0;
  loader.start_epoch();
  data::Batch b;
  while (loader.next(b)) {
    Tensor out = (*model_)(b.inputs.to(device_));
    Tensor y = b.labels.to(device_);
    loss_sum += static_cast<double>(loss_fn_(out, y).item()) * b.labels.numel();
    correct += correct_count(out, b.labels);
    r.samples += b.labels.numel();
  }
  model_->train(was_training);
  if (r.samples > 0) {
    r.loss = loss_sum / r.samples;
    r.accuracy = static_cast<double>(correct) / r.samples;
  }
  for (auto& cb : evaluate_) cb(*this, r);
  return r;
}

}  // namespace shrink::train
