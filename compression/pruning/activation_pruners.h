// The legacy activation-rank pruners (nni-semantics §3.4): rank the output channels of each
// pruned module by a statistic of its activated output, act(output), act = relu | relu6 | gelu.
//   ActivationAPoZRankPruner: APoZ_c = fraction of zeros of act(output) in channel c over
//                             batch x spatial positions; metric 1 - APoZ (mostly-zero channels
//                             are pruned first).
//   ActivationMeanRankPruner: metric = mean of act(output) in channel c.
// Batches: the statistics come from `num_batches` batches of `loader` (restarting its epochs as
// needed), run forward only, in eval mode and without gradients, through forward hooks on the
// wrapped modules; nothing is trained and no optimizer steps (NNI v2 ran its evaluator's training
// loop for training_steps steps; the statistics do not need the weight updates, and eval mode
// keeps BatchNorm running statistics untouched). Masks are generated once collection ends.
// The channel dimension is dim 1 of the output (dim 0 = batch); each active target's blocks
// must be the module's output channels (granularity out_channel, or a 1-D weight).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compression/pruning/pruner.h"
#include "framework/data/dataloader.h"

namespace shrink::compression {

class ActivationPruner : public Pruner {
 public:
  // Collects over num_batches batches, generates the masks and returns them.
  Masks compress() override;
  using Pruner::compress;  // (max_steps, max_epochs): the fused run
  // Activation statistics are collected once; a Linear/AGP scheduler cannot drive these.
  void bind_schedule(int64_t interval_steps) override;

 protected:
  ActivationPruner(Host host, const boost::json::value& config_list,
                   std::shared_ptr<data::DataLoader> loader, int64_t num_batches,
                   const std::string& activation, const char* who);
  // What is averaged per channel, elementwise on act(output).
  virtual Tensor statistic(const Tensor& activated) const = 0;
  // The channel metric from the per-channel average [C].
  virtual Tensor to_metric(const Tensor& channel_mean) const = 0;
  Tensor metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) override;

 private:
  void collect();
  void observe(const std::string& module_name, const Tensor& output);

  std::shared_ptr<data::DataLoader> loader_;
  int64_t num_batches_;
  std::string activation_;
  std::map<std::string, Tensor> sums_;     // module -> per-channel sum of the statistic [C]
  std::map<std::string, double> counts_;   // module -> values summed per channel
};

class ActivationAPoZRankPruner : public ActivationPruner {
 public:
  ActivationAPoZRankPruner(Host host, const boost::json::value& config_list,
                           std::shared_ptr<data::DataLoader> loader, int64_t num_batches,
                           const std::string& activation = "relu")
      : ActivationPruner(std::move(host), config_list, std::move(loader), num_batches, activation,
                         "ActivationAPoZRankPruner") {}

 protected:
  Tensor statistic(const Tensor& activated) const override;
  Tensor to_metric(const Tensor& channel_mean) const override;
};

class ActivationMeanRankPruner : public ActivationPruner {
 public:
  ActivationMeanRankPruner(Host host, const boost::json::value& config_list,
                           std::shared_ptr<data::DataLoader> loader, int64_t num_batches,
                           const std::string& activation = "relu")
      : ActivationPruner(std::move(host), config_list, std::move(loader), num_batches, activation,
                         "ActivationMeanRankPruner") {}

 protected:
  Tensor statistic(const Tensor& activated) const override { return activated; }
  Tensor to_metric(const Tensor& channel_mean) const override { return channel_mean; }
};

}  // namespace shrink::compression
