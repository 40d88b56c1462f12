// The live state of one compression target inside a ModuleWrapper: its TargetSpace per
// compressor kind, the pruning mask, the quantization scale/zero point, the extra trainable
// tensors some apply methods use, the tracked shape, and the last observed value (distillation).
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compression/config/target_space.h"
#include "framework/core/tensor.h"

namespace shrink::compression {

using config::CompressorKind;
using config::TargetKind;
using config::TargetSpace;

struct TargetState {
  std::string module_name;
  std::string name;  // canonical target name
  TargetKind kind = TargetKind::Parameter;
  std::map<CompressorKind, TargetSpace> spaces;  // one per compressor kind configuring it

  // Pruning: a 0/1 mask broadcastable to the target (parameters: full shape, registered on the
  // module as the buffer "<name>_mask"); undefined = not masked.
  Tensor mask;
  // Quantization: scale and zero point in the target's shrunk shape (its granularity; a scalar
  // per tensor); undefined = not quantized yet (apply methods then pass the value through). The
  // observed range (tracked_min/max) has the same shape; undefined until a quantizer observes.
  Tensor scale, zero_point;
  Tensor tracked_min, tracked_max;
  float qmin = 0.f, qmax = 0.f;
  // How many values of the whole batch each value of this rank's activation stands for: LSQ's
  // gradient scale 1/sqrt(qmax * numel) counts numel(x) times this, so that under data
  // parallelism (a rank sees its share of the global batch) it is one process's on the global
  // batch. 1 outside data parallelism and for parameters.
  double numel_factor = 1.0;
  // Trainable extras of apply methods, e.g. "slim_factor", "mvp_score" (shrunk shape).
  std::map<std::string, Tensor> extras;
  // Observed by every forward: the target's shape (inputs/outputs learn it on the first
  // forward) and, for distillation targets, the latest value.
  Shape shape;
  bool shape_known = false;
  Tensor observed;
  // Called with the incoming value before quantization and masking (observers, statistics), each
  // tagged with the compressor that added it (removed with that compressor's space).
  struct Tracker {
    const void* owner = nullptr;
    std::function<void(TargetState&, const Tensor&)> fn;
    void operator()(TargetState& t, const Tensor& v) const { fn(t, v); }
  };
  std::vector<Tracker> trackers;

  bool is(CompressorKind k) const { return spaces.count(k) != 0; }
  const TargetSpace& space(CompressorKind k) const;
  const boost::json::object& settings(CompressorKind k) const { return space(k).settings; }
  std::string key() const { return module_name + "." + name; }
};

// qmin/qmax of "int<N>" / "uint<N>" (DECISIONS row 13: intN is symmetric, -(2^(N-1)-1)..).
std::pair<float, float> quant_range(const std::string& quant_dtype);

}  // namespace shrink::compression
