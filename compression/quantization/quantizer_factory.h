// Quantizers by name, for programs (`shrink quantize`, `shrink fuse`): builds the named quantizer
// with its constructor arguments on a model or, for a fused run, on an earlier compressor.
#pragma once
#include <memory>
#include <string>

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

}  // namespace shrink::compression
