// Pruners by name, for programs (the `shrink prune` CLI): one object that builds the named pruner
// (and, for schedules, the pruner it drives) with its constructor arguments, runs it the way that
// pruner runs (once, by training, or on a schedule) and optionally fine-tunes the masked model.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "compression/pruning/pruner.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

struct PrunerOptions {
  std::string pruner;              // see pruner_names()
  std::string base_pruner = "l1";  // what linear/agp drive, or lottery's ranking (level/l1/l2/fpgm)
  int64_t training_steps = 100;    // slim/taylor; movement: cooldown step; lottery: steps per iteration
  int64_t warmup_steps = 10;       // movement
  int64_t interval_steps = 10;     // linear/agp
  int64_t total_times = 10;        // linear/agp; lottery: iterations
  int64_t activation_batches = 20;  // apoz/mean_activation: batches observed
};

class PruningRun {
 public:
  virtual ~PruningRun() = default;
  // Runs the pruner, then trains the masked model for `finetune_epochs` (schedules spread their
  // updates over that fine-tuning when it is long enough), and returns the masks.
  virtual Masks compress(int64_t finetune_epochs) = 0;
  virtual const std::vector<std::string>& warnings() const = 0;
};

std::vector<std::string> pruner_names();
// One pruner that runs as itself (not linear/agp/lottery, which drive another), on a model or, for
// a fused run, on an earlier compressor.
std::unique_ptr<Pruner> make_single_pruner(const PrunerOptions& options, Host host, const boost::json::value& config_list,
                                           train::Trainer& trainer);
std::string pruner_names_help();
// Throws config::ConfigError for an invalid config list, shrink::Error for bad options.
std::unique_ptr<PruningRun> make_pruner(const PrunerOptions& options, std::shared_ptr<nn::Module> model,
                                        const boost::json::value& config_list, train::Trainer& trainer);

}  // namespace shrink::compression
