// What `shrink fuse`, `shrink quantize` and `shrink compress` share: the fused chain of compressors
// built in NNI's order and trained, and a stand-alone quantizer run the way its kind runs.
#pragma once
#include <boost/json.hpp>
#include <iosfwd>
#include <memory>
#include <string>

#include "compression/distillation/distiller.h"
#include "compression/pruning/pruner_factory.h"
#include "compression/quantization/quantizer_factory.h"
#include "framework/train/trainer.h"

namespace shrink::cli {

// The parts of a fused run; a part is present when its config list is given.
struct FusedParts {
  const boost::json::value* prune_config = nullptr;
  const boost::json::value* quant_config = nullptr;
  const boost::json::value* distill_config = nullptr;
  compression::PrunerOptions prune;
  compression::QuantizerOptions quant;
  std::shared_ptr<nn::Module> teacher;  // on the training device already
  std::string distiller = "dynamic";
  float origin_lambda = 1.f, temperature = 2.f;
  int64_t cache_teacher_samples = 0;  // > 0: keep the teacher's outputs for that many training samples
};

// Distiller, then pruner, then quantizer (those present), each built on the one before, so the
// newest drives the run: loss = origin_loss_lambda * (CE + pruner terms) + distillation.
class FusedRun {
 public:
  // Throws config::ConfigError for an invalid config list (its path starts with the part:
  // "prune.config[0]...", "quantize.", "distill."), shrink::Error for bad options. Warnings of
  // every compressor go to `log`.
  FusedRun(std::shared_ptr<nn::Module> model, train::Trainer& trainer, const FusedParts& parts, std::ostream& log);
  // Trains for `epochs`; returns the calibration (empty without a quantizer).
  compression::CalibrationConfig run(int64_t epochs);
  compression::Pruner* pruner() const { return pruner_.get(); }
  compression::Quantizer* quantizer() const { return quantizer_.get(); }
  // Removes every wrapper of the run: the model as built, with its trained weights.
  void unwrap() { newest_->unwrap(); }

 private:
  train::Trainer& trainer_;
  std::shared_ptr<compression::Distiller> distiller_;
  std::shared_ptr<compression::Pruner> pruner_;
  std::shared_ptr<compression::Quantizer> quantizer_;
  std::shared_ptr<compression::Compressor> newest_;
};

// A quantizer alone, as `shrink quantize` runs it: ptq observes `steps` eval-mode forwards and
// computes the grid once; naive needs no data; the others track one train-mode forward on
// `first_batch`, then train for `epochs` epochs when positive, else for `steps` steps.
compression::CalibrationConfig run_quantizer(compression::Quantizer& quantizer, const std::string& name,
                                             nn::Module& model, const Tensor& first_batch, int64_t steps,
                                             int64_t epochs);

}  // namespace shrink::cli
