// Ranges, scale and zero point: the arithmetic every quantizer shares (nni-semantics §4.1,
// DECISIONS rows 13-14), computed in float32 with the same operations as NNI's torch code so
// the results are bit-identical.
//
//   range:      mn = min(tracked_min, 0), mx = max(tracked_max, 0)   (0 always representable)
//   symmetric:  s = max(|mn|, |mx|) / ((qmax - qmin) / 2),  z = floor((qmax + qmin + 1) / 2)
//               (int8: s = amax/127, z = 0; uint8: s = amax/127.5, z = 128; legacy v2 uint:
//               z = floor((qmax + qmin) / 2) = 127, DECISIONS row 14)
//   affine:     s = (mx - mn) / (qmax - qmin),  z = qmin - round(mn / s)   (round half to even)
//   both:       s = max(s, FLT_EPSILON),  z = clamp(z, qmin, qmax)
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "compression/common/scaling.h"
#include "compression/wrapper/target_state.h"

namespace shrink::compression {

enum class QuantScheme { Symmetric, Affine };

// The target's quant_scheme; null means symmetric (what NNI's QAT and PTQ do).
QuantScheme quant_scheme(const TargetState& t);
const char* to_string(QuantScheme s);
// The block structure of the target's quantization granularity; nullopt = one scale per tensor
// ("default" means per tensor for quantizers).
std::optional<Scaling> quant_scaling(const TargetState& t);
// The bit width of "int<N>" / "uint<N>".
int quant_bits(const std::string& quant_dtype);

// Per-block minimum and maximum of `value` (the shrunk shape with kept dims; a scalar per tensor).
std::pair<Tensor, Tensor> block_min_max(const Tensor& value, const std::optional<Scaling>& scaling);

// The values of each block as one row: [number of blocks, block size] (blocks in the order of
// the shrunk shape; one row per tensor without a granularity).
Tensor blocks_as_rows(const Tensor& value, const std::optional<Scaling>& scaling);

struct ScaleZeroPoint {
  Tensor scale, zero_point;
};
// Scale and zero point from an observed range (any shape; both on the range's device).
// `legacy_uint_zero_point`: v2's symmetric zero point for uint dtypes (DECISIONS row 14).
ScaleZeroPoint compute_scale_zero_point(const Tensor& tracked_min, const Tensor& tracked_max, float qmin,
                                        float qmax, QuantScheme scheme, bool legacy_uint_zero_point = false);

}  // namespace shrink::compression
