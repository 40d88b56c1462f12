// PtqQuantizer (NNI 3.0's PtqQuantizer, nni-semantics §4.2): post-training quantization. During
// calibration every target passes through unchanged while its running min/max is tracked over
// every forward; finish_calibration() then computes scale and zero point once and switches the
// targets to clamp_round. Beyond NNI the range can come from another observer (histogram.h):
// percentile, mse or kl clip the observed range per block; minmax (the default) is NNI's. kl
// applies to inputs and outputs only; parameters keep their exact min/max under it.
//
// Bias correction (nni-semantics §2.8, done per output channel where NNI reduces over all but the
// last dim and so only handles channels-last outputs): after calibration, forwards over the same
// batches measure, for every Conv2d/Linear with a bias and a quantized weight, the mean over all
// but the channel dim (dim 1 of a convolution's output, the last of a Linear's) of
// (output with float weights - output with quantized weights), inputs quantized in both; each
// bias then moves by that mean, cancelling the systematic error weight quantization adds (and,
// when the bias is itself quantized, its own rounding error). A quantized bias gets its range,
// scale and zero point again from its corrected value; the outputs' ranges are kept (they move
// by the small correction only).
//
// Deliberate difference from NNI, whose compress() runs the user's *training* loop and then an
// evaluation: here calibration forwards run in eval mode without gradients, so the weights (and
// batch-norm statistics) stay exactly the trained ones — post-training quantization.
#pragma once
#include "compression/quantization/histogram.h"
#include "compression/quantization/quantizer.h"

namespace shrink::compression {

struct PtqOptions {
  RangeObserver observer = RangeObserver::MinMax;
  double percentile = 99.99;  // the percentile observer's p
  bool bias_correction = false;
};

class PtqQuantizer : public Quantizer {
 public:
  // `trainer` (may be null): where compress() takes its calibration batches from.
  PtqQuantizer(Host host, const boost::json::value& config_list,
               train::Trainer* trainer = nullptr, PtqOptions options = {});
  ~PtqQuantizer() override;
  // Calibrates on the trainer's training batches (max_steps batches, or max_epochs epochs), then
  // finish_calibration(), then (option) bias correction over the same batches.
  CalibrationConfig compress(int64_t max_steps, int64_t max_epochs) override;
  // One calibration forward (eval mode, no gradient; the previous mode is restored).
  void calibrate(const std::vector<nn::Value>& inputs);
  // Scale and zero point from the tracked ranges; targets switch to clamp_round.
  CalibrationConfig finish_calibration();
  // Bias correction by hand: measure over any number of forwards (after finish_calibration),
  // then apply. Returns the corrected module names.
  void measure_bias_error(const std::vector<nn::Value>& inputs);
  std::vector<std::string> apply_bias_correction();
  bool calibrated() const { return done_; }

 protected:
  // In a fused run (compressor.h) the ranges are observed during training; the scale and zero
  // point are computed when it ends (NNI's PTQ _fuse_postprocess).
  void on_run_end() override {
    if (!done_) finish_calibration();
  }

 private:
  void clip_ranges();
  bool uses_histogram(const TargetState& t) const;

  template <typename F>
  void for_calibration_batches(int64_t max_steps, int64_t max_epochs, F&& f);
  struct BiasError {
    Tensor sum;     // per output channel, (float - quantized) output summed
    double count = 0;  // elements per channel summed
    nn::HookHandle hook;
  };

  PtqOptions options_;
  std::map<std::string, BiasError> bias_errors_;  // by module name
  std::map<std::string, AbsHistogram> histograms_;  // by target key (not for minmax)
  bool done_ = false;
};

}  // namespace shrink::compression
