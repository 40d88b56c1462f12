// LotteryTicketPruner (legacy v2, nni-semantics §3.4; Frankle & Carbin): iterative magnitude
// pruning with weight rewinding. Iteration i = 1..T of `total_iteration`:
//   1. fine-tune `finetune_steps` optimizer steps with the current masks;
//   2. write the masks into the weights (pruned weights become 0, so they rank lowest and the
//      masks stay nested), then prune every target to s_i = 1 - (1 - s)^(i/T) (s: its goal)
//      with the base pruner's metric ("level", "l1", "l2" or "fpgm") on the trained weights;
//   3. if reset_weight, rewind every parameter of the model to its value at construction; the
//      masks stay. Otherwise the new masks are written into the weights as well, so pruned
//      weights are 0 after every iteration.
// Fine-tuning comes before pruning within an iteration so the magnitudes ranked are trained
// ones: pruning right after a rewind would rank the initial weights. After the last iteration
// the model holds the "winning ticket" (initial weights + final masks) when reset_weight.
// Only ratio goals are scheduled (sparse_ratio, min/max_sparse_ratio); sparse_threshold is
// rejected. The trainer's optimizer state is not rewound.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compression/pruning/pruner.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

class LotteryTicketPruner {
 public:
  LotteryTicketPruner(std::shared_ptr<nn::Module> model, const boost::json::value& config_list,
                      train::Trainer& trainer, int64_t total_iteration, bool reset_weight = true,
                      const std::string& base = "level");

  // Runs the remaining iterations and returns the final masks.
  Masks compress(int64_t finetune_steps);
  // One iteration (callers that evaluate between iterations); an error after the last.
  void run_iteration(int64_t finetune_steps);
  int64_t iterations_done() const { return done_; }

  // s_i = 1 - (1 - goal)^(i / total_iteration).
  static double target(double goal, int64_t i, int64_t total_iteration);
  static std::vector<double> target_sequence(double goal, int64_t total_iteration);

  Pruner& pruner() { return *base_; }
  Masks get_masks() { return base_->get_masks(); }

 private:
  std::unique_ptr<Pruner> base_;
  train::Trainer& trainer_;
  int64_t total_, done_ = 0;
  bool reset_;
  std::vector<std::pair<Tensor, Tensor>> initial_;  // (parameter, its value at construction)
};

}  // namespace shrink::compression
