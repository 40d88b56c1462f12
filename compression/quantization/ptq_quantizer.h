// PtqQuantizer (NNI 3.0's PtqQuantizer, nni-semantics §4.2): post-training quantization. During
// calibration every target passes through unchanged while its running min/max is tracked over
// every forward; finish_calibration() then computes scale and zero point once and switches the
// targets to clamp_round. Beyond NNI the range can come from another observer (histogram.h):
// percentile, mse or kl clip the observed range per block; minmax (the default) is NNI's.
//
// Deliberate difference from NNI, whose compress() runs the user's *training* loop and then an
// evaluation: here calibration forwards run in eval mode without gradients, so the weights (and
// batch-norm statistics) stay exactly the trained ones — post-training quantization.
#pragma once
#include "compression/quantization/histogram.h"
#include "compression/quantization/quantizer.h"

namespace shrink::compression {

class PtqQuantizer : public Quantizer {
 public:
  // `trainer` (may be null): where compress() takes its calibration batches from.
  PtqQuantizer(std::shared_ptr<nn::Module> model, const boost::json::value& config_list,
               train::Trainer* trainer = nullptr, RangeObserver observer = RangeObserver::MinMax,
               double percentile = 99.99);
  // Calibrates on the trainer's training batches (max_steps batches, or max_epochs epochs), then
  // finish_calibration().
  CalibrationConfig compress(int64_t max_steps, int64_t max_epochs) override;
  // One calibration forward (eval mode, no gradient; the previous mode is restored).
  void calibrate(const std::vector<nn::Value>& inputs);
  // Scale and zero point from the tracked ranges; targets switch to clamp_round.
  CalibrationConfig finish_calibration();
  bool calibrated() const { return done_; }

 private:
  void clip_ranges();

  RangeObserver observer_;
  double percentile_;
  std::map<std::string, AbsHistogram> histograms_;  // by target key (not for minmax)
  bool done_ = false;
};

}  // namespace shrink::compression
