// The Trainer's checkpoints: what a run's state is, writing it, and putting it back on resume.
#include <filesystem>
#include <ostream>
#include <set>

#include "framework/core/autograd.h"
#include "framework/core/random.h"
#include "framework/train/trainer.h"

namespace shrink::train {

void Trainer::set_checkpointing(const std::string& dir, int64_t every) {
  SHRINK_CHECK(!dir.empty(), "Trainer::set_checkpointing: empty directory");
  SHRINK_CHECK(every > 0, "Trainer::set_checkpointing: every must be a positive number of steps, got ", every);
  // Now, so that a directory that cannot be made fails before any training is done (by the rank
  // that writes checkpoints).
  std::error_code ec;
  if (comm_->is_writer()) std::filesystem::create_directories(dir, ec);
  SHRINK_CHECK(!comm_->is_writer() || (!ec && std::filesystem::is_directory(dir)), "checkpoint directory '", dir, "' cannot be created",
               ec ? ": " + ec.message() : std::string());
  checkpoint_dir_ = dir;
  checkpoint_every_ = every;
}

bool Trainer::resume_from(const std::string& dir) {
  pending_resume_ = io::load_latest_checkpoint(dir, log());
  if (log()) {
    if (pending_resume_)
      *log() << "resuming from " << pending_resume_->source << "\n";
    else
      *log() << "no checkpoint in " << dir << ": starting afresh\n";
  }
  return pending_resume_.has_value();
}

Trainer::CallbackId Trainer::add_state(SaveState save, LoadState load) {
  SHRINK_CHECK(save && load, "Trainer::add_state: both save and load are required");
  states_.emplace_back(++last_id_, std::make_pair(std::move(save), std::move(load)));
  return last_id_;
}

namespace {

// The optimizer's parameters that are not the model's (learned scales, adapters), by position.
template <typename F>
void for_each_extra_param(nn::Module& model, optim::Optimizer& opt, F fn) {
  std::set<const TensorImpl*> in_model;
  for (auto& [n, p] : model.named_parameters()) in_model.insert(p.impl());
  auto& groups = opt.param_groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i)
      if (!in_model.count(groups[g].params[i].impl()))
        fn("optim.param." + opt.group_key(g) + ".p" + std::to_string(i), groups[g].params[i]);
}

}  // namespace

io::StateDict Trainer::checkpoint_state() {
  io::StateDict s;
  s.put_int("trainer.global_step", global_step_);
  s.put_int("trainer.epochs_done", epochs_done_);
  s.put_int("trainer.call", pos_.call);
  s.put_int("trainer.call_steps", pos_.call_steps);
  s.put_int("trainer.call_epochs", pos_.call_epochs);
  s.put_int("trainer.loader_epoch", pos_.loader_epoch);
  s.put_int("trainer.batches", pos_.batches);
  s.put_int("trainer.correct", pos_.correct);
  s.put_int("trainer.seen", pos_.seen);
  s.put_real("trainer.loss_sum", pos_.loss_sum);
  s.put_int("data.batch_size", train_loader_->batch_size());
  s.put_int("data.batches_per_epoch", train_loader_->num_batches());
  s.put_text("rng.default", default_generator().state());
  for (auto& [name, t] : model_->state_dict()) s.put("model." + name, t);
  for (auto& [name, m] : model_->named_modules()) {
    const std::string extra = m->extra_state();
    if (!extra.empty()) s.put_text("module." + name, extra);
  }
  optimizer_->save_state(s, "optim.");
  for_each_extra_param(*model_, *optimizer_, [&s](const std::string& key, const Tensor& p) { s.put(key, p); });
  if (scheduler_) s.put_int("scheduler.last_epoch", scheduler_->last_epoch());
  for (auto& [id, fns] : states_) fns.first(s);
  return s;
}

void Trainer::load_checkpoint_state(const io::StateDict& s) {
  NoGradGuard ng;
  global_step_ = s.integer("trainer.global_step");
  epochs_done_ = s.integer("trainer.epochs_done");
  pos_.call = s.integer("trainer.call");
  pos_.call_steps = s.integer("trainer.call_steps");
  pos_.call_epochs = s.integer("trainer.call_epochs");
  pos_.loader_epoch = s.integer("trainer.loader_epoch");
  pos_.batches = s.integer("trainer.batches");
  pos_.correct = s.integer("trainer.correct");
  pos_.seen = s.integer("trainer.seen");
  pos_.loss_sum = s.real("trainer.loss_sum");
  // The epoch's running sums in a checkpoint are every rank's (write_checkpoint): rank 0 carries
  // them on, the others start from zero, and the epoch's all-reduce adds them up once.
  if (!comm_->is_writer()) {
    pos_.correct = pos_.seen = 0;
    pos_.loss_sum = 0.0;
  }
  // The data position is counted in batches: the same batches, or the resume would be another run.
  SHRINK_CHECK(s.integer("data.batch_size") == train_loader_->batch_size() &&
                   s.integer("data.batches_per_epoch") == train_loader_->num_batches(),
               s.source, ": written with batches of ", s.integer("data.batch_size"), " and ",
               s.integer("data.batches_per_epoch"), " batches an epoch; this run has ", train_loader_->batch_size(),
               " and ", train_loader_->num_batches(), " (a different --batch or --limit?)");
  default_generator().set_state(s.text("rng.default"));
  for (auto& [name, t] : model_->state_dict()) s.restore("model." + name, t);
  for (auto& [name, m] : model_->named_modules()) {
    const std::string key = "module." + name;
    try {
      m->set_extra_state(s.has(key) ? s.text(key) : std::string());
    } catch (const Error& e) {
      fail(s.source, ": '", key, "': ", e.what());
    }
  }
  // The parts first: a compressor may add the optimizer's parameter groups it had by then.
  for (auto& [id, fns] : states_) fns.second(s);
  optimizer_->load_state(s, "optim.");
  for_each_extra_param(*model_, *optimizer_, [&s](const std::string& key, Tensor& p) { s.restore(key, p); });
  if (scheduler_) scheduler_->set_last_epoch(s.integer("scheduler.last_epoch"));
  const std::vector<std::string> unused = s.unused();
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", " : "") + unused[i];
    fail(s.source, ": the checkpoint holds state this run has no place for (", unused.size(), " keys: ", list,
         unused.size() > 5 ? ", ..." : "", "); was it written by a different command or configuration?");
  }
}

void Trainer::write_checkpoint() {
  if (comm_->size() == 1) {
    io::save_checkpoint(checkpoint_dir_, global_step_, checkpoint_state());
    return;
  }
  // Every rank holds the same model, optimizer and compressor state; the epoch's running sums are
  // each rank's own, so the checkpoint gets their total (every rank calls this at the same step).
  double sums[3] = {pos_.loss_sum, static_cast<double>(pos_.correct), static_cast<double>(pos_.seen)};
  comm_->allreduce(sums, 3, dist::ReduceOp::Sum);
  if (!comm_->is_writer()) return;  // one rank writes
  const Position mine = pos_;
  pos_.loss_sum = sums[0];
  pos_.correct = static_cast<int64_t>(sums[1]);
  pos_.seen = static_cast<int64_t>(sums[2]);
  io::StateDict state;
  try {
    state = checkpoint_state();
  } catch (...) {
    pos_ = mine;
    throw;
  }
  pos_ = mine;
  io::save_checkpoint(checkpoint_dir_, global_step_, state);
}

}  // namespace shrink::train
