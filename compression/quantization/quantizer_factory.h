// Quantizers by name, for programs (`shrink quantize`, `shrink fuse`): builds the named quantizer
// with its constructor arguments on a model or, for a fused run, on an earlier compressor.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "compression/quantization/quantizer.h"

namespace shrink::compression {

struct QuantizerOptions {
  std::string name;                // ptq | qat | lsq | lsq_plus | dorefa | bnn | naive
  std::string observer = "minmax";  // ptq: minmax | percentile | mse | kl
  double percentile = 99.99;       // ptq with the percentile observer
  bool bias_correction = false;    // ptq
  int64_t start_step = 0;          // qat: quant_start_step
};

const char* quantizer_names_help();
// Throws config::ConfigError for an invalid config list, shrink::Error for bad options.
std::unique_ptr<Quantizer> make_quantizer(const QuantizerOptions& options, Host host, const boost::json::value& config_list,
                                          train::Trainer& trainer);

// The model fake-quantized exactly as a saved calibration says (what `shrink infer` compares int8
// inference with): a PTQ quantizer over the calibration's targets, dtypes and schemes, with each
// target's granularity read off its scale's shape (a scalar: per tensor; one value per row of a
// parameter: out_channel; one per column: in_channel; one per channel of an activation:
// per_channel), calibrated once on `probe` and then given the saved scales and zero points.
// Errors name the target whose shape says no granularity.
std::unique_ptr<Quantizer> quantizer_from_calibration(std::shared_ptr<nn::Module> model,
                                                      const CalibrationConfig& calibration,
                                                      const std::vector<nn::Value>& probe);

}  // namespace shrink::compression
