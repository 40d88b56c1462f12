// Apply methods by name, as NNI's apply_method.py: how a mask or a quantizer is applied to a
// target's value. Pruning: bypass, mul, add, movement_mul, movement_add, slim_mul. Quantization
// (straight-through estimators, nni-semantics §2.4): bypass, clamp_round, qat_clamp_round,
// lsq_clamp_round, lsq_plus_clamp_round, dorefa_clamp_round_weight, dorefa_clamp_round_output,
// bnn_clamp_round, naive_truncate (v1's NaiveQuantizer). Compressors may register more; an
// unknown name is an error listing the valid ones.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "compression/wrapper/target_state.h"

namespace shrink::compression {

using ApplyMethod = std::function<Tensor(const Tensor& value, TargetState& target)>;

class ApplyMethods {
 public:
  static const ApplyMethod& pruning(const std::string& name);
  static const ApplyMethod& quantization(const std::string& name);
  static void register_pruning(const std::string& name, ApplyMethod fn);
  static void register_quantization(const std::string& name, ApplyMethod fn);
  static std::vector<std::string> pruning_names();
  static std::vector<std::string> quantization_names();
};

// NNI's constant for masked positions under `add` (a large negative logit).
constexpr float kSmallMaskValue = -1000.f;

}  // namespace shrink::compression
