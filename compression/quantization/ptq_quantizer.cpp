#include "compression/quantization/ptq_quantizer.h"

#include "compression/quantization/observers.h"
#include "framework/core/autograd.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

PtqQuantizer::PtqQuantizer(std::shared_ptr<nn::Module> model, const boost::json::value& config_list,
                           train::Trainer* trainer)
    : Quantizer(std::move(model), config_list, trainer, "PtqQuantizer") {
  set_apply_method("bypass");
  add_tracker([this](TargetState& t, const Tensor& v, bool) {
    if (!done_) observe_min_max(t, v);
  });
}

void PtqQuantizer::calibrate(const std::vector<nn::Value>& inputs) {
  SHRINK_CHECK(!done_, "PtqQuantizer: calibration already finished");
  const bool was_training = model_->is_training();
  model_->eval();
  NoGradGuard ng;
  (*model_)(inputs);
  model_->train(was_training);
}

CalibrationConfig PtqQuantizer::compress(int64_t max_steps, int64_t max_epochs) {
  SHRINK_CHECK(max_steps > 0 || max_epochs > 0, "PtqQuantizer::compress: give a number of calibration batches ",
               "(max_steps) or epochs");
  data::DataLoader& loader = *trainer().train_loader();
  const auto params = model_->parameters();
  const Device device = params.empty() ? Device::CPU : params.front().device();
  int64_t done = 0;
  for (int64_t epoch = 0; max_epochs <= 0 || epoch < max_epochs; ++epoch) {
    loader.start_epoch();
    data::Batch b;
    int64_t in_epoch = 0;
    while ((max_steps <= 0 || done < max_steps) && loader.next(b)) {
      calibrate({nn::Value(b.inputs.to(device))});
      ++done;
      ++in_epoch;
    }
    if ((max_steps > 0 && done >= max_steps) || in_epoch == 0) break;
  }
  return finish_calibration();
}

CalibrationConfig PtqQuantizer::finish_calibration() {
  for (TargetState* t : targets()) {
    SHRINK_CHECK(t->tracked_min.defined(), "PtqQuantizer: ", t->key(), " saw no value during calibration ",
                 "(is the module reached by the calibration forwards?)");
    refresh_scale_zero_point(*t);
  }
  done_ = true;
  set_apply_method("clamp_round");
  return get_calibration_config();
}

}  // namespace shrink::compression
