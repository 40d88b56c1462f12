#include "compression/quantization/ptq_quantizer.h"

#include <algorithm>

#include "compression/quantization/observers.h"
#include "framework/core/autograd.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

PtqQuantizer::PtqQuantizer(std::shared_ptr<nn::Module> model, const boost::json::value& config_list,
                           train::Trainer* trainer, RangeObserver observer, double percentile)
    : Quantizer(std::move(model), config_list, trainer, "PtqQuantizer"), observer_(observer), percentile_(percentile) {
  SHRINK_CHECK(percentile > 0.0 && percentile <= 100.0, who_, ": percentile ", percentile, " must be in (0, 100]");
  set_apply_method("bypass");
  add_tracker([this](TargetState& t, const Tensor& v, bool) {
    if (done_) return;
    observe_min_max(t, v);
    if (observer_ != RangeObserver::MinMax) histograms_[t.key()].add(blocks_as_rows(v, quant_scaling(t)));
  });
}

void PtqQuantizer::clip_ranges() {
  for (TargetState* t : targets()) {
    auto h = histograms_.find(t->key());
    if (h == histograms_.end()) continue;
    std::vector<float> lo = t->tracked_min.to_vector(), hi = t->tracked_max.to_vector();
    std::vector<double> levels(lo.size());
    const double span = static_cast<double>(t->qmax) - t->qmin;
    for (size_t b = 0; b < lo.size(); ++b)
      levels[b] = quant_scheme(*t) == QuantScheme::Affine && lo[b] >= 0.f ? span : span / 2.0;
    const std::vector<float> amax = h->second.amax(observer_, percentile_, levels);
    for (size_t b = 0; b < lo.size(); ++b) {
      lo[b] = std::max(lo[b], -amax[b]);
      hi[b] = std::min(hi[b], amax[b]);
    }
    const Device d = t->tracked_min.device();
    t->tracked_min = Tensor::from_vector(lo, t->tracked_min.shape()).to(d);
    t->tracked_max = Tensor::from_vector(hi, t->tracked_max.shape()).to(d);
  }
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
  for (TargetState* t : targets())
    SHRINK_CHECK(t->tracked_min.defined(), "PtqQuantizer: ", t->key(), " saw no value during calibration ",
                 "(is the module reached by the calibration forwards?)");
  clip_ranges();
  for (TargetState* t : targets()) refresh_scale_zero_point(*t);
  done_ = true;
  set_apply_method("clamp_round");
  return get_calibration_config();
}

}  // namespace shrink::compression
