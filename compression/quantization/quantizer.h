// Quantizer: the base every quantizer shares (NNI's Quantizer, nni-semantics §4). It parses the
// config list (quantization kind), wraps the selected modules, fuses the fuse_names groups
// (module_fusion.h), and owns
// the per-target quantization state of TargetState (scale, zero point, tracked range, qmin/qmax).
// Subclasses decide how the range is observed and when scale/zero point are (re)computed, through
// the wrapper's trackers (observe, before fake quantization) and the trainer's step callbacks.
//
// API as NNI's: compress(max_steps, max_epochs) trains (or calibrates) and returns the
// calibration config; get_calibration_config(), update_calibration_config(), track_forward().
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "compression/common/compressor.h"
#include "compression/quantization/module_fusion.h"
#include "compression/quantization/quant_params.h"

namespace shrink::compression {

// One target's calibration: what an inference engine needs to quantize it for real.
struct TargetCalibration {
  std::string module, target;
  std::string quant_dtype;   // "int8", "uint4", ...
  std::string quant_scheme;  // "symmetric" | "affine"
  int quant_bits = 8;
  float qmin = 0.f, qmax = 0.f;
  Tensor scale, zero_point;          // the target's shrunk shape (a scalar per tensor)
  Tensor tracked_min, tracked_max;   // observed range, or derived from s and z when none was
};
// "<module>.<target>" -> calibration.
using CalibrationConfig = std::map<std::string, TargetCalibration>;

class Quantizer : public Compressor {
 public:
  ~Quantizer() override { release(); }
  // Trains through the trainer for max_steps optimizer steps / max_epochs epochs (-1: no limit)
  // and returns the calibration config; the newest of a fused run trains every compressor of it.
  // Quantizers that do not train (PTQ, Naive) override it.
  virtual CalibrationConfig compress(int64_t max_steps, int64_t max_epochs);
  CalibrationConfig get_calibration_config();
  // Sets scale and zero point (and tracked range) of the named targets; the dtype, scheme and
  // shape must match the target's. Unknown keys are an error naming the known ones.
  void update_calibration_config(const CalibrationConfig& config);
  // One forward of `inputs` without gradient, in the model's current mode: shapes and observed
  // ranges are recorded (NNI's track_forward, used before training to initialise state).
  virtual void track_forward(const std::vector<nn::Value>& inputs);

  // Writes fake-quantized parameter values into the parameters (explicitly; DECISIONS row 12).
  // A fused batch norm is folded into its leader's weight and bias and leaves the model (an
  // Identity takes its place), so the baked model computes the fused quantized one.
  void bake();

 protected:
  // `trainer` may be null for quantizers that never train (PTQ over explicit batches, Naive).
  Quantizer(Host host, const boost::json::value& config_list, train::Trainer* trainer, const char* who);

  // Called by update_calibration_config for each target it set (LSQ makes the loaded scale its
  // learned one).
  virtual void calibration_loaded(TargetState& t) { (void)t; }
  // Rejects dtypes with a single level (int1: -0..0), which no scale can use; BNN (which ignores
  // quant_dtype) does not call it.
  void require_levels();
  // Gives the fused modules back (a batch norm folded away returns to its place).
  void release() override;
  // Sets every target's quantization apply method.
  void set_apply_method(const std::string& method);
  void set_apply_method(TargetState& t, const std::string& method);
  // Adds a tracker (observer) to every target; it also sees whether the module is training.
  void add_tracker(std::function<void(TargetState&, const Tensor&, bool training)> fn);
  // Recomputes scale and zero point of `t` from its tracked range.
  void refresh_scale_zero_point(TargetState& t);
  bool legacy_target(const TargetState& t) const;
  train::Trainer& trainer();

  std::map<std::string, std::unique_ptr<ModuleFusion>> fusions_;  // by leader module name
};

}  // namespace shrink::compression
