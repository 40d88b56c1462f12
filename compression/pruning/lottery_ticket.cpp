#include "compression/pruning/lottery_ticket.h"

#include <cmath>

#include "compression/pruning/norm_pruners.h"
#include "framework/core/autograd.h"

namespace shrink::compression {

namespace {

std::unique_ptr<Pruner> make_base(const std::string& base, std::shared_ptr<nn::Module> model,
                                  const boost::json::value& config_list) {
  if (base == "level") return std::make_unique<LevelPruner>(std::move(model), config_list);
  if (base == "l1") return std::make_unique<L1NormPruner>(std::move(model), config_list);
  if (base == "l2") return std::make_unique<L2NormPruner>(std::move(model), config_list);
  if (base == "fpgm") return std::make_unique<FPGMPruner>(std::move(model), config_list);
  fail("LotteryTicketPruner: unknown base pruner '", base, "' (valid: level, l1, l2, fpgm)");
}

}  // namespace

LotteryTicketPruner::LotteryTicketPruner(std::shared_ptr<nn::Module> model, const boost::json::value& config_list,
                                         train::Trainer& trainer, int64_t total_iteration, bool reset_weight,
                                         const std::string& base)
    : trainer_(trainer), total_(total_iteration), reset_(reset_weight) {
  SHRINK_CHECK(total_iteration > 0, "LotteryTicketPruner: total_iteration must be positive, got ",
               total_iteration);
  SHRINK_CHECK(trainer.model_ptr().get() == model.get(), "LotteryTicketPruner: the trainer trains ",
               "a different model than the one being pruned");
  for (const auto& [name, p] : model->named_parameters()) initial_.push_back({p, p.contiguous_copy()});
  base_ = make_base(base, std::move(model), config_list);
  for (TargetState* t : base_->targets()) {
    const auto& s = t->settings(CompressorKind::Pruning);
    auto it = s.find("sparse_threshold");
    SHRINK_CHECK(it == s.end() || it->value().is_null(), "LotteryTicketPruner: ", t->key(),
                 " has a sparse_threshold; only sparse_ratio goals can be scheduled");
  }
  base_->scale_goals(0.0);
}

double LotteryTicketPruner::target(double goal, int64_t i, int64_t total_iteration) {
  return 1.0 - std::pow(1.0 - goal, static_cast<double>(i) / static_cast<double>(total_iteration));
}

std::vector<double> LotteryTicketPruner::target_sequence(double goal, int64_t total_iteration) {
  std::vector<double> out;
  for (int64_t i = 1; i <= total_iteration; ++i) out.push_back(target(goal, i, total_iteration));
  return out;
}

void LotteryTicketPruner::run_iteration(int64_t finetune_steps) {
  SHRINK_CHECK(done_ < total_, "LotteryTicketPruner: all ", total_, " iterations are done");
  SHRINK_CHECK(finetune_steps >= 0, "LotteryTicketPruner: finetune_steps must be >= 0");
  if (finetune_steps > 0) trainer_.train(-1, finetune_steps);
  const int64_t i = ++done_;
  base_->bake();
  base_->set_goals([this, i](const std::string&, double goal) { return target(goal, i, total_); });
  base_->generate_masks();
  if (reset_) {
    NoGradGuard ng;
    for (auto& [param, value] : initial_) param.copy_(value);
  } else {
    base_->bake();
  }
}

Masks LotteryTicketPruner::compress(int64_t finetune_steps) {
  while (done_ < total_) run_iteration(finetune_steps);
  return base_->get_masks();
}

}  // namespace shrink::compression
