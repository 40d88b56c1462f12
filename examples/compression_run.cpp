#include "examples/compression_run.h"

#include <ostream>

#include "compression/config/config_error.h"

namespace shrink::cli {

FusedRun::FusedRun(std::shared_ptr<nn::Module> model, train::Trainer& trainer, const FusedParts& parts,
                   std::ostream& log)
    : trainer_(trainer) {
  auto host = [&]() -> compression::Host {
    if (newest_) return compression::Host(newest_);
    return compression::Host(model);
  };
  // A config list error names its part: "prune.config[0].sparse_ratio: ...".
  auto part = [](const char* name, auto&& build) {
    try {
      build();
    } catch (const compression::config::ConfigError& e) {
      throw compression::config::ConfigError(std::string(name) + "." + e.path(), e.problem());
    }
  };
  if (parts.distill_config)
    part("distill", [&] {
      distiller_ = compression::make_distiller(parts.distiller, host(), *parts.distill_config, trainer, parts.teacher,
                                               parts.origin_lambda, parts.temperature);
      if (parts.cache_teacher_samples > 0) distiller_->cache_teacher_outputs(parts.cache_teacher_samples);
      newest_ = distiller_;
    });
  if (parts.prune_config)
    part("prune", [&] { newest_ = pruner_ = compression::make_single_pruner(parts.prune, host(), *parts.prune_config, trainer); });
  if (parts.quant_config)
    part("quantize", [&] { newest_ = quantizer_ = compression::make_quantizer(parts.quant, host(), *parts.quant_config, trainer); });
  SHRINK_CHECK(newest_ != nullptr, "a fused run needs a prune, quantize or distill config list");
  for (compression::Compressor* c : newest_->fused())
    for (const auto& w : c->warnings()) log << "warning: " << c->name() << ": " << w << "\n";
  if (distiller_ && parts.distiller == "adaptive1d") {  // its adapters are sized from one forward
    data::Batch b;
    trainer.train_loader()->start_epoch();
    trainer.train_loader()->next(b);
    distiller_->track_forward({nn::Value(b.inputs.to(trainer.device()))});
  }
}

compression::CalibrationConfig FusedRun::run(int64_t epochs) {
  if (quantizer_) return quantizer_->compress(-1, epochs);
  if (pruner_ && !pruner_->run_trainer()) {  // a one-shot pruner alone: masks, then fine-tuning
    pruner_->compress();
    trainer_.train(epochs);
  } else if (pruner_) {
    pruner_->compress(-1, epochs);
  } else {
    distiller_->compress(-1, epochs);
  }
  return {};
}

compression::CalibrationConfig run_quantizer(compression::Quantizer& quantizer, const std::string& name,
                                             nn::Module& model, const Tensor& first_batch, int64_t steps,
                                             int64_t epochs) {
  if (name == "ptq") return quantizer.compress(steps, -1);
  if (name == "naive") return quantizer.compress(-1, -1);
  model.train();
  quantizer.track_forward({nn::Value(first_batch)});
  return epochs > 0 ? quantizer.compress(-1, epochs) : quantizer.compress(steps, -1);
}

}  // namespace shrink::cli
