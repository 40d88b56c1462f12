// Trainer: the training loop with callbacks. This is the contract compressors build on (NNI's
// Evaluator): they add loss terms (patch_loss), act after backward (e.g. Taylor/movement scores),
// around the optimizer step (mask refresh, scale updates), at epoch end, and they may add
// parameters to the optimizer. The loop itself stays model- and compressor-agnostic.
#pragma once
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/data/dataloader.h"
#include "framework/dist/communicator.h"
#include "framework/io/checkpoint.h"
#include "framework/nn/module.h"
#include "framework/optim/optimizer.h"

namespace shrink::dist {
class GradReducer;
}

namespace shrink::train {

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;
  int64_t samples = 0;
};

struct EpochStats {
  int64_t epoch = 0;
  double loss = 0.0;            // mean training loss over the epoch's batches
  double train_accuracy = 0.0;  // on the training batches as seen (train mode)
  double test_accuracy = -1.0;  // -1 when no evaluation loader
  double test_loss = 0.0;
  double samples_per_s = 0.0;  // every rank's samples together
  double seconds = 0.0;
};

class Trainer {
 public:
  // Default loss: cross entropy of the model's logits against the labels.
  using LossFn = std::function<Tensor(const Tensor& output, const Tensor& labels)>;
  using LossPatch = std::function<Tensor(const Tensor& loss, const data::Batch& batch)>;
  using Callback = std::function<void(Trainer&)>;
  using EpochCallback = std::function<void(Trainer&, const EpochStats&)>;
  using EvalCallback = std::function<void(Trainer&, const EvalResult&)>;

  Trainer(std::shared_ptr<nn::Module> model, std::shared_ptr<optim::Optimizer> optimizer,
          std::shared_ptr<data::DataLoader> train_loader,
          std::shared_ptr<data::DataLoader> eval_loader = nullptr, LossFn loss = nullptr);
  ~Trainer();  // removes its model hooks
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs until `max_epochs` epochs or `max_steps` optimizer steps (either may be -1 = no limit;
  // at least one must be set). Returns per-epoch statistics.
  std::vector<EpochStats> train(int64_t max_epochs, int64_t max_steps = -1);
  // Evaluation in eval mode without gradients; restores the previous mode.
  EvalResult evaluate(data::DataLoader& loader);
  EvalResult evaluate() { return evaluate(*eval_loader_); }

  // ---- callbacks (run in registration order) ----
  // Every registration returns an id; remove_callback(id) takes it out again (a compressor's
  // callbacks are re-registered in a fused run's order, nni-semantics §6.2).
  using CallbackId = uint64_t;
  CallbackId patch_loss(LossPatch patch) { return add(loss_patches_, std::move(patch)); }
  CallbackId on_after_backward(Callback cb) { return add(after_backward_, std::move(cb)); }
  CallbackId on_before_step(Callback cb) { return add(before_step_, std::move(cb)); }
  CallbackId on_after_step(Callback cb) { return add(after_step_, std::move(cb)); }
  CallbackId on_epoch_end(EpochCallback cb) { return add(epoch_end_, std::move(cb)); }
  CallbackId on_evaluate(EvalCallback cb) { return add(evaluate_, std::move(cb)); }
  // Removes a callback or a model hook (and drops its buffer); an unknown id does nothing.
  void remove_callback(CallbackId id);

  // ---- model hooks with a buffer each (NNI's evaluator TensorHook / ForwardHook / BackwardHook) ----
  // The buffer belongs to the hook: it keeps what the hook appends across steps and train()
  // calls until the hook is removed.
  using HookBuffer = std::vector<Tensor>;
  using ForwardHook = std::function<void(nn::Module&, const std::vector<nn::Value>& inputs, const nn::Value& output,
                                         HookBuffer&)>;
  // Sees the gradient of a parameter (the step's total, before it reaches grad()) and may return
  // a replacement (undefined: keep).
  using TensorHook = std::function<Tensor(const Tensor& grad, HookBuffer&)>;
  // Sees the gradient of a module's (tensor) output in each backward pass.
  using BackwardHook = std::function<void(nn::Module&, const Tensor& grad_output, HookBuffer&)>;
  CallbackId add_forward_hook(const std::string& module, ForwardHook hook);
  CallbackId add_tensor_hook(const std::string& parameter, TensorHook hook);
  CallbackId add_backward_hook(const std::string& module, BackwardHook hook);
  const HookBuffer& hook_buffer(CallbackId id) const;

  // Adds trainable tensors to the optimizer: into the first parameter group that holds a
  // parameter of `module` (so they share its learning rate and decay), else into group 0 (NNI's
  // patch_optim_param_group).
  void add_to_param_group(const std::string& module, const std::vector<Tensor>& params);

  nn::Module& model() { return *model_; }
  std::shared_ptr<nn::Module> model_ptr() { return model_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  std::shared_ptr<data::DataLoader> train_loader() { return train_loader_; }
  std::shared_ptr<data::DataLoader> eval_loader() { return eval_loader_; }
  int64_t global_step() const { return global_step_; }
  // The batch being processed and its (patched) loss, valid inside step callbacks.
  const data::Batch& current_batch() const { return batch_; }
  const Tensor& current_loss() const { return loss_; }

  // Progress output: a live bar when `out` is a terminal, else one plain line per epoch.
  void set_log(std::ostream* out, bool tty) {
    log_ = out;
    tty_ = tty;
  }
  void set_device(Device d) { device_ = d; }
  Device device() const { return device_; }
  // Non-finite values. By default every step checks its loss and its gradients (one min/max pass
  // each) before the optimizer step; a NaN/Inf stops training with an Error that names the step and
  // the first op (and module) that produced one, found by re-running that step's forward and
  // backward in anomaly mode (autograd.h). `false` trains on regardless (--allow-nonfinite).
  void set_check_finite(bool on) { check_finite_ = on; }
  // Anomaly mode for every step: each op's output and gradient is checked as it is made.
  void set_detect_anomaly(bool on) { detect_anomaly_ = on; }
  void set_scheduler(std::shared_ptr<optim::LRScheduler> s) { scheduler_ = std::move(s); }

  // ---- data parallelism (framework/dist/) ----
  // The ranks this trainer trains with; by default the process's world (dist::world(): every
  // rank of an mpirun job, or just this process). With more than one rank, train():
  // - starts from rank 0's parameters and buffers (broadcast);
  // - shards the training loader (DataLoader::set_shard): each rank takes its part of every
  //   global batch of `batch_size`, in the order one process with the same seed would see;
  // - averages gradients across ranks before the after-backward callbacks, weighting each rank
  //   by its share of the batch, so every rank holds the gradient of the global batch's loss and
  //   takes the same optimizer step (dist::GradReducer: buckets reduced while backward runs);
  // - reports loss, accuracy and samples/s over all ranks;
  // - keeps BatchNorm's batch statistics per rank; buffers (running statistics) are rank 0's,
  //   broadcast before every evaluation and when train() returns (PyTorch DDP's default);
  // - logs and writes checkpoints on rank 0 only.
  // evaluate() shards its loader for the evaluation (and gives it back as it was) and reduces
  // its sums. Compressors reduce their own
  // statistics through communicator() before deciding masks or scales.
  void set_communicator(std::shared_ptr<dist::Communicator> comm);
  dist::Communicator& communicator() { return *comm_; }
  std::shared_ptr<dist::Communicator> communicator_ptr() { return comm_; }
  // Trainable tensors outside the optimizer (a compressor's own, stepped by its own optimizer)
  // whose gradients must be averaged across ranks too. Parameters added to the optimizer during
  // a step (e.g. learned scales made at the first forward) are reduced at the end of that step
  // and with the others from the next step on.
  void add_reduced_parameters(const std::string& owner, const std::vector<Tensor>& tensors);
  // Sums gradients in rank order (bit-identical repetitions; no overlap with backward).
  // Also makes the communicator deterministic (Communicator::set_deterministic), so that the
  // compressors' and SyncBatchNorm's sums are ordered too.
  void set_deterministic_reduce(bool on) {
    deterministic_reduce_ = on;
    comm_->set_deterministic(on);
  }
  // Seconds spent waiting for gradient all-reduces after backward, and the steps they cover.
  double allreduce_wait_seconds() const { return allreduce_wait_s_; }
  int64_t allreduce_steps() const { return allreduce_steps_; }

  // ---- checkpoints (framework/io/checkpoint.h) ----
  // After every `every` optimizer steps (counted over the trainer's life) the run's whole state
  // is written to `dir`; the newest two checkpoints are kept. The state: the model's parameters,
  // buffers and modules' extra state (dropout streams), the optimizer (its parameters outside the
  // model too, e.g. learned scales), the scheduler, the default random stream, the position in
  // the data (epoch, batches done, the epoch's running sums) and every add_state() part.
  void set_checkpointing(const std::string& dir, int64_t every);
  // The next train() continues from the newest checkpoint in `dir` that verifies, as if the run
  // that wrote it had not stopped: the steps and epochs before it are not run again (nor their
  // callbacks; the restored state is theirs). The file is read now (errors surface here); the
  // state is put back when train() starts, after every compressor is built. With no
  // checkpoint in `dir` it says so on the log and the run starts afresh. Returns whether one
  // was found. A checkpoint written in a later train() call of the run (a pruner's training,
  // then the fine-tuning) makes the calls before it return at once without training; the code
  // between the calls runs as it did, and whatever it changed is then overwritten by the
  // restored state, so everything it changes must be checkpointed state (masks, weights,
  // compressor state) — true of every compressor here.
  bool resume_from(const std::string& dir);
  // State beyond the trainer's own (a compressor's masks, scores, observers, schedules): `save`
  // writes it into every checkpoint, `load` takes it back when a run resumes. Each part writes
  // under its own key prefix. Returns an id for remove_callback.
  using SaveState = std::function<void(io::StateDict&)>;
  using LoadState = std::function<void(const io::StateDict&)>;
  CallbackId add_state(SaveState save, LoadState load);
  // What a checkpoint written now holds / puts back (public for tests and tools).
  io::StateDict checkpoint_state();
  void load_checkpoint_state(const io::StateDict& state);

 private:
  void progress(int64_t done, int64_t total, double loss, double seconds);
  // The step's forward, patched loss and backward.
  Tensor forward_backward(const Tensor& x, const Tensor& y, Tensor* out);
  // Where the step's first non-finite value came from (re-runs it in anomaly mode); throws.
  [[noreturn]] void report_nonfinite(const Tensor& x, const Tensor& y, const std::string& what);
  std::string scope_name(const void* scope) const;
  template <typename F>
  CallbackId add(std::vector<std::pair<CallbackId, F>>& list, F fn) {
    list.emplace_back(++last_id_, std::move(fn));
    return last_id_;
  }
  struct ModelHook;
  // Where the run is: what a checkpoint needs beyond the model, optimizer and callbacks' state to
  // continue an epoch exactly (the epoch's running sums feed its statistics).
  struct Position {
    int64_t call = 0;             // train() calls so far, this one included
    int64_t call_steps = 0;       // optimizer steps in this call
    int64_t call_epochs = 0;      // epochs begun in this call before the current one
    int64_t loader_epoch = -1;    // the training loader's epoch
    int64_t batches = 0, correct = 0, seen = 0;  // this epoch so far
    double loss_sum = 0.0;
  };
  void write_checkpoint();
  // The log, on the writing rank only.
  std::ostream* log() const { return comm_->is_writer() ? log_ : nullptr; }
  // Gradient reduction over the optimizer's parameters and the extra ones, as they are now; null
  // on one rank.
  std::unique_ptr<dist::GradReducer> make_reducer();
  // The step's gradients of parameters the reducer did not cover (added to the optimizer during
  // the step), averaged now; then a reducer that covers them. Returns the reducer to use.
  std::unique_ptr<dist::GradReducer> cover_new_parameters(std::unique_ptr<dist::GradReducer> reducer, double share);

  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::shared_ptr<data::DataLoader> train_loader_, eval_loader_;
  std::shared_ptr<optim::LRScheduler> scheduler_;
  LossFn loss_fn_;
  std::vector<std::pair<CallbackId, LossPatch>> loss_patches_;
  std::vector<std::pair<CallbackId, Callback>> after_backward_, before_step_, after_step_;
  std::vector<std::pair<CallbackId, EpochCallback>> epoch_end_;
  std::vector<std::pair<CallbackId, EvalCallback>> evaluate_;
  std::map<CallbackId, std::unique_ptr<ModelHook>> model_hooks_;
  std::vector<std::pair<CallbackId, std::pair<SaveState, LoadState>>> states_;
  Position pos_;
  std::string checkpoint_dir_;
  int64_t checkpoint_every_ = 0;
  std::optional<io::StateDict> pending_resume_;
  CallbackId last_id_ = 0;
  int64_t global_step_ = 0;
  int64_t epochs_done_ = 0;
  data::Batch batch_;
  Tensor loss_;
  std::ostream* log_ = nullptr;
  bool tty_ = false;
  Device device_ = Device::CPU;
  bool check_finite_ = true, detect_anomaly_ = false;
  std::shared_ptr<dist::Communicator> comm_;
  std::vector<std::pair<std::string, Tensor>> extra_reduced_;
  bool deterministic_reduce_ = false;
  double allreduce_wait_s_ = 0.0;
  int64_t allreduce_steps_ = 0;
};

}  // namespace shrink::train
