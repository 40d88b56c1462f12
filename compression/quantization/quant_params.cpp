#include "compression/quantization/quant_params.h"

#include <cfloat>
#include <cmath>

#include "framework/core/autograd.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

QuantScheme quant_scheme(const TargetState& t) {
  const auto& v = t.settings(CompressorKind::Quantization).at("quant_scheme");
  return v.is_string() && v.as_string() == "affine" ? QuantScheme::Affine : QuantScheme::Symmetric;
}

const char* to_string(QuantScheme s) { return s == QuantScheme::Affine ? "affine" : "symmetric"; }

std::optional<Scaling> quant_scaling(const TargetState& t) {
  const auto* g = t.settings(CompressorKind::Quantization).if_contains("granularity");
  return g ? Scaling::from_setting(*g) : std::nullopt;
}

int quant_bits(const std::string& dtype) {
  return std::stoi(dtype.substr(dtype.rfind("uint", 0) == 0 ? 4 : 3));
}

std::pair<Tensor, Tensor> block_min_max(const Tensor& value, const std::optional<Scaling>& scaling) {
  NoGradGuard ng;
  MinMax r = aminmax(blocks_as_rows(value, scaling));  // one pass over the value
  if (!scaling) return {reshape(r.min, {}), reshape(r.max, {})};
  const Shape shrunk = scaling->shrunk_shape(value.shape());
  return {reshape(r.min, shrunk), reshape(r.max, shrunk)};
}

Tensor blocks_as_rows(const Tensor& value, const std::optional<Scaling>& scaling) {
  NoGradGuard ng;
  Tensor v = value.detach();
  if (!scaling) return reshape(v, {1, v.numel()});
  const Shape& shape = v.shape();
  const std::vector<int64_t> k = scaling->kernel_for(shape);
  Shape split;
  std::vector<int64_t> perm;
  int64_t blocks = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    split.push_back(shape[d] / k[d]);
    split.push_back(k[d]);
    perm.push_back(static_cast<int64_t>(2 * d));
    blocks *= shape[d] / k[d];
  }
  for (size_t d = 0; d < shape.size(); ++d) perm.push_back(static_cast<int64_t>(2 * d + 1));
  return reshape(permute(reshape(v, split), perm).contiguous_copy(), {blocks, v.numel() / std::max<int64_t>(blocks, 1)});
}

ScaleZeroPoint compute_scale_zero_point(const Tensor& tracked_min, const Tensor& tracked_max, float qmin,
                                        float qmax, QuantScheme scheme, bool legacy_uint_zero_point) {
  SHRINK_CHECK(tracked_min.shape() == tracked_max.shape(), "scale/zero point: tracked min ", tracked_min.shape(),
               " and max ", tracked_max.shape(), " differ in shape");
  const std::vector<float> lo = tracked_min.to_vector(), hi = tracked_max.to_vector();
  std::vector<float> scale(lo.size()), zero(lo.size());
  // The divisors as NNI's Python computes them (double), then used as float32 by torch.
  const double iqmin = qmin, iqmax = qmax;
  const float half_levels = static_cast<float>((iqmax - iqmin) / 2.0);
  const float levels = static_cast<float>(iqmax - iqmin);
  const bool is_uint = qmin == 0.f;
  const float symmetric_zero = static_cast<float>(
      std::floor((iqmax + iqmin + (legacy_uint_zero_point && is_uint ? 0.0 : 1.0)) / 2.0));
  for (size_t i = 0; i < lo.size(); ++i) {
    const float mn = std::min(lo[i], 0.f), mx = std::max(hi[i], 0.f);
    float s, z;
    if (scheme == QuantScheme::Symmetric) {
      s = std::max(std::fabs(mn), std::fabs(mx)) / half_levels;
      s = std::max(s, FLT_EPSILON);
      z = symmetric_zero;
    } else {
      s = (mx - mn) / levels;
      s = std::max(s, FLT_EPSILON);
      z = qmin - std::nearbyint(mn / s);
    }
    scale[i] = s;
    zero[i] = std::min(std::max(z, qmin), qmax);
  }
  const Device d = tracked_min.device();
  return {Tensor::from_vector(scale, tracked_min.shape()).to(d), Tensor::from_vector(zero, tracked_min.shape()).to(d)};
}

}  // namespace shrink::compression
