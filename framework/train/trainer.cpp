#include "framework/train/trainer.h"

#include <cstdio>

#include "framework/train/progress.h"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <optional>
#include <ostream>
#include <set>

#include "framework/core/autograd.h"
#include "framework/dist/data_parallel.h"
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
      loss_fn_(std::move(loss)), comm_(dist::world()) {
  SHRINK_CHECK(model_ && optimizer_ && train_loader_, "Trainer: model, optimizer and training "
               "loader are required");
  if (!loss_fn_)
    loss_fn_ = [](const Tensor& out, const Tensor& y) { return cross_entropy(out, y); };
}

// A model hook and its buffer; `remove` undoes the registration.
struct Trainer::ModelHook {
  HookBuffer buffer;
  std::function<void()> remove;
};

Trainer::~Trainer() {
  for (auto& [id, h] : model_hooks_) h->remove();
  // A run that trained less than the one that wrote the checkpoint never reached it.
  if (pending_resume_ && log())
    *log() << "warning: " << pending_resume_->source << " was never resumed from (this run made fewer training "
          << "calls than the one that wrote it)\n";
}

namespace {
template <typename List>
bool erase_id(List& list, uint64_t id) {
  for (auto it = list.begin(); it != list.end(); ++it)
    if (it->first == id) {
      list.erase(it);
      return true;
    }
  return false;
}
}  // namespace

void Trainer::remove_callback(CallbackId id) {
  if (erase_id(loss_patches_, id) || erase_id(after_backward_, id) || erase_id(before_step_, id) ||
      erase_id(after_step_, id) || erase_id(epoch_end_, id) || erase_id(evaluate_, id) ||
      erase_id(states_, id))
    return;
  auto it = model_hooks_.find(id);
  if (it == model_hooks_.end()) return;
  it->second->remove();
  model_hooks_.erase(it);
}

const Trainer::HookBuffer& Trainer::hook_buffer(CallbackId id) const {
  auto it = model_hooks_.find(id);
  SHRINK_CHECK(it != model_hooks_.end(), "Trainer::hook_buffer: no model hook with id ", id);
  return it->second->buffer;
}

namespace {
std::shared_ptr<nn::Module> find_module(const std::shared_ptr<nn::Module>& model, const std::string& name,
                                        const char* what) {
  auto m = name.empty() ? model : model->find(name);
  SHRINK_CHECK(m != nullptr, what, ": the model has no module '", name, "'");
  return m;
}
}  // namespace

Trainer::CallbackId Trainer::add_forward_hook(const std::string& module, ForwardHook hook) {
  auto m = find_module(model_, module, "Trainer::add_forward_hook");
  auto h = std::make_unique<ModelHook>();
  HookBuffer* buffer = &h->buffer;
  nn::HookHandle handle = m->register_forward_hook(
      [hook = std::move(hook), buffer](nn::Module& mod, const std::vector<nn::Value>& in,
                                        const nn::Value& out) -> std::optional<nn::Value> {
        hook(mod, in, out, *buffer);
        return std::nullopt;
      });
  h->remove = [handle]() mutable { handle.remove(); };
  model_hooks_[++last_id_] = std::move(h);
  return last_id_;
}

Trainer::CallbackId Trainer::add_tensor_hook(const std::string& parameter, TensorHook hook) {
  Tensor p;
  for (auto& [name, t] : model_->named_parameters())
    if (name == parameter) p = t;
  SHRINK_CHECK(p.defined(), "Trainer::add_tensor_hook: the model has no parameter '", parameter, "'");
  auto h = std::make_unique<ModelHook>();
  HookBuffer* buffer = &h->buffer;
  const uint64_t tensor_id = p.register_hook([hook = std::move(hook), buffer](const Tensor& g) { return hook(g, *buffer); });
  h->remove = [p, tensor_id] { p.remove_hook(tensor_id); };
  model_hooks_[++last_id_] = std::move(h);
  return last_id_;
}

Trainer::CallbackId Trainer::add_backward_hook(const std::string& module, BackwardHook hook) {
  auto m = find_module(model_, module, "Trainer::add_backward_hook");
  auto h = std::make_unique<ModelHook>();
  HookBuffer* buffer = &h->buffer;
  nn::Module* mod = m.get();
  // The output's gradient hook lives on this forward's graph node, which dies with the graph, so
  // a removed hook cannot run later: `alive` is shared with the removal.
  auto alive = std::make_shared<bool>(true);
  nn::HookHandle handle = m->register_forward_hook(
      [hook = std::move(hook), buffer, mod, alive](nn::Module&, const std::vector<nn::Value>&,
                                                   const nn::Value& out) -> std::optional<nn::Value> {
        if (!out.is_tensor() || !out.tensor().requires_grad()) return std::nullopt;
        out.tensor().register_hook([hook, buffer, mod, alive](const Tensor& g) {
          if (*alive) hook(*mod, g, *buffer);
          return Tensor();
        });
        return std::nullopt;
      });
  h->remove = [handle, alive]() mutable {
    *alive = false;
    handle.remove();
  };
  model_hooks_[++last_id_] = std::move(h);
  return last_id_;
}

void Trainer::add_to_param_group(const std::string& module, const std::vector<Tensor>& params) {
  auto& groups = optimizer_->param_groups();
  SHRINK_CHECK(!groups.empty(), "Trainer::add_to_param_group: the optimizer has no parameter group");
  std::map<const TensorImpl*, std::string> owner;  // parameter -> its module's name
  for (auto& [name, p] : model_->named_parameters()) {
    const size_t dot = name.rfind('.');
    owner[p.impl()] = dot == std::string::npos ? "" : name.substr(0, dot);
  }
  size_t target = 0;
  bool found = false;
  for (size_t g = 0; g < groups.size() && !found; ++g)
    for (const Tensor& p : groups[g].params) {
      auto it = owner.find(p.impl());
      if (it != owner.end() && it->second == module) {
        target = g;
        found = true;
        break;
      }
    }
  for (const Tensor& p : params) {
    SHRINK_CHECK(p.defined() && p.is_leaf() && p.requires_grad(), "Trainer::add_to_param_group: ",
                 p.defined() ? p.describe() : std::string("an undefined tensor"), " for module '", module,
                 "' is not a leaf that requires grad");
    groups[target].params.push_back(p);
  }
}

void Trainer::set_communicator(std::shared_ptr<dist::Communicator> comm) {
  SHRINK_CHECK(comm != nullptr, "Trainer::set_communicator: no communicator");
  comm_ = std::move(comm);
  if (deterministic_reduce_) comm_->set_deterministic(true);
}

void Trainer::add_reduced_parameters(const std::string& owner, const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors) {
    SHRINK_CHECK(t.defined() && t.is_leaf() && t.requires_grad(), "Trainer::add_reduced_parameters: ", owner,
                 ": ", t.defined() ? t.describe() : std::string("an undefined tensor"), " is not a leaf that requires grad");
    extra_reduced_.emplace_back(owner + " " + t.describe(), t);
  }
}

namespace {
// Every trainable tensor the ranks must agree on: the optimizer's, then the extra ones, each once.
std::vector<std::pair<std::string, Tensor>> reduced_parameters(
    nn::Module& model, optim::Optimizer& optimizer, const std::vector<std::pair<std::string, Tensor>>& extra) {
  std::map<const TensorImpl*, std::string> names;
  for (auto& [name, p] : model.named_parameters()) names[p.impl()] = name;
  std::vector<std::pair<std::string, Tensor>> params;
  std::set<const TensorImpl*> seen;
  for (const auto& group : optimizer.param_groups())
    for (const Tensor& p : group.params) {
      if (!seen.insert(p.impl()).second) continue;
      auto it = names.find(p.impl());
      params.emplace_back(it != names.end() ? it->second : "an optimizer parameter " + p.describe(), p);
    }
  for (const auto& [name, t] : extra)
    if (seen.insert(t.impl()).second) params.emplace_back(name, t);
  return params;
}
}  // namespace

std::unique_ptr<dist::GradReducer> Trainer::make_reducer() {
  if (comm_->size() == 1) return nullptr;
  std::vector<std::pair<std::string, Tensor>> params = reduced_parameters(*model_, *optimizer_, extra_reduced_);
  dist::GradReducer::Options options;
  options.deterministic = deterministic_reduce_;
  return std::make_unique<dist::GradReducer>(comm_, std::move(params), options);
}

std::unique_ptr<dist::GradReducer> Trainer::cover_new_parameters(std::unique_ptr<dist::GradReducer> reducer,
                                                                double share) {
  std::vector<std::pair<std::string, Tensor>> all = reduced_parameters(*model_, *optimizer_, extra_reduced_);
  std::set<const TensorImpl*> covered;
  for (const auto& [name, p] : reducer->params()) covered.insert(p.impl());
  bool all_covered = true;
  for (const auto& [name, p] : all) all_covered = all_covered && covered.count(p.impl()) > 0;
  if (all_covered) return reducer;
  for (const auto& [name, p] : all) {
    if (covered.count(p.impl())) continue;
    // Every rank runs the same graph, so every rank has this gradient or none does.
    int64_t has = p.grad().defined() ? 1 : 0, all_have = has;
    comm_->allreduce(&all_have, 1, dist::ReduceOp::Sum);
    SHRINK_CHECK(all_have == 0 || all_have == comm_->size(), "data parallel: ", name, " received a gradient on ",
                 all_have, " of ", comm_->size(), " ranks; every rank must run the same graph");
    if (!has) continue;
    p.set_grad(dist::allreduce(*comm_, mul(p.grad(), static_cast<float>(share)), dist::ReduceOp::Sum));
  }
  allreduce_wait_s_ += reducer->wait_seconds();
  allreduce_steps_ += reducer->steps();
  reducer.reset();  // its hooks go before the new reducer's
  return make_reducer();
}

Tensor Trainer::forward_backward(const Tensor& x, const Tensor& y, Tensor* out) {
  *out = (*model_)(x);
  Tensor loss = loss_fn_(*out, y);
  for (auto& [id, p] : loss_patches_) loss = p(loss, batch_);
  optimizer_->zero_grad();
  loss.backward();
  return loss;
}

std::string Trainer::scope_name(const void* scope) const {
  if (!scope) return "(none: outside every module)";
  for (auto& [name, m] : model_->named_modules())
    if (m.get() == scope) return name.empty() ? "(the model)" : name;
  return "(a module outside the model)";
}

void Trainer::report_nonfinite(const Tensor& x, const Tensor& y, const std::string& what) {
  const int64_t step = global_step_ + 1;
  // Re-running one rank's step would start gradient reductions the others never join.
  if (comm_->size() > 1)
    fail("step ", step, ": ", what, " (under data parallelism the op that produced it is not searched for: run the ",
         "same command as one process to find it; training stopped; --allow-nonfinite trains on regardless)");
  try {
    AnomalyGuard anomaly;
    Tensor out;
    forward_backward(x, y, &out);
  } catch (const NonFiniteError& e) {
    fail("step ", step, ": ", what, "; the first non-finite value: ", e.what(), " in the ",
         e.backward ? "backward" : "forward", " of module '", scope_name(e.scope),
         "' (training stopped; --allow-nonfinite trains on regardless)");
  }
  fail("step ", step, ": ", what, " (no single op produced it when the step was re-run; training stopped; ",
       "--allow-nonfinite trains on regardless)");
}

void Trainer::progress(int64_t done, int64_t total, double loss, double seconds) {
  if (!log() || !tty_) return;
  char extra[32];
  std::snprintf(extra, sizeof extra, "loss %.4f", loss);
  *log_ << "\r\033[K" << progress::format_line("epoch", done, total, seconds, extra) << std::flush;
}

std::vector<EpochStats> Trainer::train(int64_t max_epochs, int64_t max_steps) {
  SHRINK_CHECK(max_epochs >= 0 || max_steps >= 0, "Trainer::train: give max_epochs or max_steps");
  const int64_t call = pos_.call + 1;
  const bool parallel = comm_->size() > 1;
  if (parallel) {
    // Sharded before a checkpoint is put back: it was written with the sharded batch count.
    train_loader_->set_shard(comm_->rank(), comm_->size());
    // Every rank must resume from the same checkpoint (or none): each reads it for itself.
    const int64_t where[2] = {pending_resume_ ? 1 : 0,
                              pending_resume_ ? pending_resume_->integer("trainer.global_step") : -1};
    dist::check_identical(*comm_, "the checkpoint resumed from (found or not, and its step; is the checkpoint "
                          "directory on a filesystem every rank sees?)", where, sizeof where);
  }
  bool resumed = false;
  if (pending_resume_) {
    const int64_t saved_call = pending_resume_->integer("trainer.call");
    if (saved_call > call) {  // the checkpoint is in a later call: this one was done
      pos_ = Position();
      pos_.call = call;
      if (log()) *log() << "resume: training call " << call << " was complete at the checkpoint\n";
      return {};
    }
    io::StateDict state = std::move(*pending_resume_);
    pending_resume_.reset();
    SHRINK_CHECK(saved_call == call, state.source, ": written in train() call ", saved_call, " of its run, but ",
                 "this is call ", call);
    load_checkpoint_state(state);
    resumed = true;
  } else {
    pos_ = Position();
    pos_.call = call;
  }
  std::vector<EpochStats> history;
  const int64_t first_epoch = pos_.call_epochs;
  if (parallel) dist::broadcast_module(*comm_, *model_);
  std::unique_ptr<dist::GradReducer> reducer = make_reducer();
  for (int64_t e = first_epoch; max_epochs < 0 || e < max_epochs; ++e) {
    // A resumed run finishes the epoch its checkpoint was in, even when the step limit was
    // reached inside it (the uninterrupted run did too).
    const bool continuing = resumed && e == first_epoch;
    if (!continuing && max_steps >= 0 && pos_.call_steps >= max_steps) break;
    pos_.call_epochs = e;
    model_->train(true);
    if (continuing) {
      train_loader_->start_epoch(pos_.loader_epoch);
      train_loader_->skip(pos_.batches);
    } else {
      train_loader_->start_epoch();
      pos_.loader_epoch = train_loader_->epoch();
      pos_.batches = pos_.correct = pos_.seen = 0;
      pos_.loss_sum = 0.0;
    }
    EpochStats st;
    st.epoch = epochs_done_;
    auto t0 = Clock::now();
    int64_t seen_before = pos_.seen;  // samples/s counts this process's work only
    const int64_t total = train_loader_->num_batches();
    while (train_loader_->next(batch_)) {
      if (max_steps >= 0 && pos_.call_steps >= max_steps) break;
      Tensor x = batch_.inputs.to(device_), y = batch_.labels.to(device_);
      Tensor out;
      // This rank's share of the global batch (1 on one rank).
      const double share = batch_.global_size > 0 ? static_cast<double>(batch_.size()) / batch_.global_size : 1.0;
      if (reducer) reducer->begin_step(share);
      try {
        AnomalyGuard anomaly(detect_anomaly_ || AnomalyMode::enabled());  // a caller's guard stays on
        loss_ = forward_backward(x, y, &out);
      } catch (const NonFiniteError& e) {
        fail("step ", global_step_ + 1, ": ", e.what(), " in the ", e.backward ? "backward" : "forward", " of module '",
             scope_name(e.scope), "'");
      }
      if (reducer) {
        reducer->finish_step();
        reducer = cover_new_parameters(std::move(reducer), share);
      }
      if (check_finite_) {
        bool loss_finite = all_finite(loss_);
        if (parallel) {  // every rank stops together, or none does
          int64_t bad = loss_finite ? 0 : 1;
          comm_->allreduce(&bad, 1, dist::ReduceOp::Max);
          if (bad && loss_finite) report_nonfinite(x, y, "the loss is not finite on another rank");
        }
        if (!loss_finite) report_nonfinite(x, y, "the loss is " + std::to_string(loss_.item()));
        for (const auto& group : optimizer_->param_groups())
          for (const Tensor& p : group.params)
            if (p.grad().defined() && !all_finite(p.grad())) {
              std::string name = "a parameter " + p.describe() + " outside the model";
              for (auto& [n, q] : model_->named_parameters())
                if (q.impl() == p.impl()) name = n;
              report_nonfinite(x, y, "the gradient of " + name + " is not finite");
            }
      }
      for (auto& [id, cb] : after_backward_) cb(*this);
      for (auto& [id, cb] : before_step_) cb(*this);
      optimizer_->step();
      ++global_step_;
      ++pos_.call_steps;
      for (auto& [id, cb] : after_step_) cb(*this);
      pos_.loss_sum += loss_.item() * share;
      ++pos_.batches;
      pos_.correct += correct_count(out, batch_.labels);
      pos_.seen += batch_.labels.numel();
      progress(pos_.batches, total, pos_.loss_sum / pos_.batches, seconds_since(t0));
      if (checkpoint_every_ > 0 && global_step_ % checkpoint_every_ == 0) write_checkpoint();
    }
    if (log() && tty_) *log() << "\n";
    SHRINK_CHECK(pos_.batches > 0 || (max_steps >= 0 && pos_.call_steps >= max_steps),
                 "Trainer::train: the training loader yielded no batch (empty dataset, or "
                 "drop_last with fewer examples than a batch)");
    st.seconds = seconds_since(t0);
    // Over every rank: the loss sums are already weighted by each rank's share of its batches.
    double sums[4] = {pos_.loss_sum, static_cast<double>(pos_.correct), static_cast<double>(pos_.seen),
                      static_cast<double>(pos_.seen - seen_before)};
    if (parallel) {
      comm_->allreduce(sums, 4, dist::ReduceOp::Sum);
      dist::broadcast_module(*comm_, *model_);  // rank 0's running statistics for the evaluation
    }
    st.loss = pos_.batches ? sums[0] / pos_.batches : 0.0;
    st.train_accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
    st.samples_per_s = st.seconds > 0 ? sums[3] / st.seconds : 0.0;
    if (scheduler_) scheduler_->step();
    if (eval_loader_) {
      EvalResult r = evaluate(*eval_loader_);
      st.test_accuracy = r.accuracy;
      st.test_loss = r.loss;
    }
    ++epochs_done_;
    history.push_back(st);
    for (auto& [id, cb] : epoch_end_) cb(*this, st);
  }
  if (reducer) {
    allreduce_wait_s_ += reducer->wait_seconds();
    allreduce_steps_ += reducer->steps();
  }
  // A step limit can end the call inside an epoch: its running statistics are rank 0's too.
  if (parallel) dist::broadcast_module(*comm_, *model_);
  return history;
}

EvalResult Trainer::evaluate(data::DataLoader& loader) {
  NoGradGuard ng;
  bool was_training = model_->is_training();
  model_->eval();
  EvalResult r;
  double loss_sum = 0.0;
  int64_t correct = 0;
  // Sharded for this evaluation only: the caller's loader is given back as it was.
  struct ShardScope {
    data::DataLoader& loader;
    int shard, shards;
    ~ShardScope() { loader.set_shard(shard, shards); }
  };
  std::optional<ShardScope> restore;
  if (comm_->size() > 1) {
    restore.emplace(ShardScope{loader, loader.shard(), loader.shards()});
    loader.set_shard(comm_->rank(), comm_->size());
    dist::broadcast_module(*comm_, *model_);
  }
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
  if (comm_->size() > 1) {
    double sums[3] = {loss_sum, static_cast<double>(correct), static_cast<double>(r.samples)};
    comm_->allreduce(sums, 3, dist::ReduceOp::Sum);
    loss_sum = sums[0];
    correct = static_cast<int64_t>(sums[1]);
    r.samples = static_cast<int64_t>(sums[2]);
  }
  if (r.samples > 0) {
    r.loss = loss_sum / r.samples;
    r.accuracy = static_cast<double>(correct) / r.samples;
  }
  for (auto& [id, cb] : evaluate_) cb(*this, r);
  return r;
}

}  // namespace shrink::train
