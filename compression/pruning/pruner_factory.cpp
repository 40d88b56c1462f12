#include "compression/pruning/pruner_factory.h"

#include "compression/pruning/activation_pruners.h"
#include "compression/pruning/lottery_ticket.h"
#include "compression/pruning/movement_pruner.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/pruning/scheduled_pruners.h"
#include "compression/pruning/slim_pruner.h"
#include "compression/pruning/taylor_pruner.h"

namespace shrink::compression {

namespace {

std::unique_ptr<Pruner> make_single(const std::string& name, const PrunerOptions& o, Host host,
                                    const boost::json::value& cfg, train::Trainer& trainer) {
  if (name == "level") return std::make_unique<LevelPruner>(std::move(host), cfg);
  if (name == "l1") return std::make_unique<L1NormPruner>(std::move(host), cfg);
  if (name == "l2") return std::make_unique<L2NormPruner>(std::move(host), cfg);
  if (name == "fpgm") return std::make_unique<FPGMPruner>(std::move(host), cfg);
  if (name == "slim") return std::make_unique<SlimPruner>(std::move(host), cfg, trainer, o.training_steps);
  if (name == "taylor") return std::make_unique<TaylorPruner>(std::move(host), cfg, trainer, o.training_steps);
  if (name == "movement")
    return std::make_unique<MovementPruner>(std::move(host), cfg, trainer, o.warmup_steps, o.training_steps);
  if (name == "apoz")
    return std::make_unique<ActivationAPoZRankPruner>(std::move(host), cfg, trainer.train_loader(), o.activation_batches);
  if (name == "mean_activation")
    return std::make_unique<ActivationMeanRankPruner>(std::move(host), cfg, trainer.train_loader(), o.activation_batches);
  fail("unknown pruner '", name, "' (", pruner_names_help(), ")");
}

void finetune(train::Trainer& trainer, int64_t epochs) {
  if (epochs > 0) trainer.train(epochs);
}

// A pruner that runs as itself (once, or by training), then fine-tunes.
class SingleRun : public PruningRun {
 public:
  SingleRun(std::unique_ptr<Pruner> p, train::Trainer& t) : pruner_(std::move(p)), trainer_(t) {}
  Masks compress(int64_t finetune_epochs) override {
    Masks m = pruner_->compress();
    finetune(trainer_, finetune_epochs);
    return pruner_->get_masks().empty() ? m : pruner_->get_masks();
  }
  const std::vector<std::string>& warnings() const override { return pruner_->warnings(); }

 private:
  std::unique_ptr<Pruner> pruner_;
  train::Trainer& trainer_;
};

// Linear/AGP driving a bound pruner: the schedule's updates run during the training steps.
class ScheduledRun : public PruningRun {
 public:
  ScheduledRun(std::unique_ptr<Pruner> bound, bool agp, const PrunerOptions& o, train::Trainer& t)
      : bound_(std::move(bound)), trainer_(t), min_steps_(o.interval_steps * o.total_times) {
    if (agp)
      schedule_ = std::make_unique<AGPPruner>(*bound_, o.interval_steps, o.total_times, &t);
    else
      schedule_ = std::make_unique<LinearPruner>(*bound_, o.interval_steps, o.total_times, &t);
  }
  Masks compress(int64_t finetune_epochs) override {
    const int64_t steps = std::max(min_steps_, finetune_epochs * trainer_.train_loader()->num_batches());
    return schedule_->compress(steps);
  }
  const std::vector<std::string>& warnings() const override { return bound_->warnings(); }

 private:
  std::unique_ptr<Pruner> bound_;
  std::unique_ptr<ScheduledPruner> schedule_;
  train::Trainer& trainer_;
  int64_t min_steps_;
};

class LotteryRun : public PruningRun {
 public:
  LotteryRun(std::shared_ptr<nn::Module> model, const boost::json::value& cfg, const PrunerOptions& o,
             train::Trainer& t)
      : lottery_(std::move(model), cfg, t, o.total_times, true, o.base_pruner), trainer_(t),
        steps_(o.training_steps), warnings_(lottery_.pruner().warnings()) {}
  Masks compress(int64_t finetune_epochs) override {
    Masks m = lottery_.compress(steps_);
    finetune(trainer_, finetune_epochs);
    return m;
  }
  const std::vector<std::string>& warnings() const override { return warnings_; }

 private:
  LotteryTicketPruner lottery_;
  train::Trainer& trainer_;
  int64_t steps_;
  std::vector<std::string> warnings_;
};

}  // namespace

std::unique_ptr<Pruner> make_single_pruner(const PrunerOptions& o, Host host, const boost::json::value& cfg,
                                           train::Trainer& trainer) {
  return make_single(o.pruner, o, std::move(host), cfg, trainer);
}

std::vector<std::string> pruner_names() {
  return {"level", "l1", "l2", "fpgm", "slim", "taylor", "movement",
          "linear", "agp", "lottery", "apoz", "mean_activation"};
}

std::string pruner_names_help() {
  std::string s;
  for (const auto& n : pruner_names()) s += (s.empty() ? "" : " | ") + n;
  return s;
}

std::unique_ptr<PruningRun> make_pruner(const PrunerOptions& o, std::shared_ptr<nn::Module> model,
                                        const boost::json::value& cfg, train::Trainer& trainer) {
  SHRINK_CHECK(o.training_steps > 0 && o.interval_steps > 0 && o.total_times > 0,
               "pruner options: training, interval steps and total times must be positive");
  if (o.pruner == "linear" || o.pruner == "agp")
    return std::make_unique<ScheduledRun>(make_single(o.base_pruner, o, model, cfg, trainer),
                                          o.pruner == "agp", o, trainer);
  if (o.pruner == "lottery") return std::make_unique<LotteryRun>(model, cfg, o, trainer);
  return std::make_unique<SingleRun>(make_single(o.pruner, o, model, cfg, trainer), trainer);
}

}  // namespace shrink::compression
