#include "compression/wrapper/apply_methods.h"

#include <cmath>
#include <map>
#include <mutex>

#include "compression/common/scaling.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, ApplyMethod> pruning, quantization;
};

// A per-block tensor (pruning score/factor, quantization scale/zero point) has the target's
// shrunk shape; the target's granularity for `kind` expands it back (broadcastably) over the value.
Tensor expand_blocks(const Tensor& blocks, const Tensor& value, const TargetState& t, CompressorKind kind) {
  if (blocks.shape() == value.shape() || blocks.dim() == 0) return blocks;
  const auto& s = t.settings(kind);
  auto it = s.find("granularity");
  if (it == s.end()) return blocks;
  const std::optional<Scaling> scaling = Scaling::from_setting(it->value());
  if (!scaling) return blocks;  // broadcast as is
  return scaling->expand(blocks, value.shape(), /*full=*/false);
}

Tensor expand_extra(const Tensor& extra, const Tensor& value, const TargetState& t) {
  return expand_blocks(extra, value, t, CompressorKind::Pruning);
}

// Forward: the mask; backward: the incoming gradient passes to the score unchanged.
Tensor straight_through(const Tensor& mask, const Tensor& score) {
  return add(mask, sub(score, score.detach()));
}

Tensor maybe_mask(const Tensor& x, const TargetState& t, MaskMethod m) {
  return t.mask.defined() ? apply_mask(x, t.mask, m) : x;
}

// Fake quantization of x with the target's scale and zero point (expanded over its blocks).
// Until a quantizer has set them, the value passes through unchanged (NNI does the same).
Tensor quantize(const Tensor& x, const TargetState& t, QuantMethod method) {
  if (!t.scale.defined() || !t.zero_point.defined()) return x;
  QuantArgs q;
  q.method = method;
  q.qmin = t.qmin;
  q.qmax = t.qmax;
  // LSQ's gradient scale 1/sqrt(qmax * numel(x)) (1 when that is 0, as NNI); numel over the
  // global batch under data parallelism.
  const double n = static_cast<double>(t.qmax) * static_cast<double>(x.numel()) * t.numel_factor;
  q.grad_scale = n > 0 ? static_cast<float>(1.0 / std::sqrt(n)) : 1.f;
  return fake_quantize(x, expand_blocks(t.scale, x, t, CompressorKind::Quantization),
                       expand_blocks(t.zero_point, x, t, CompressorKind::Quantization), q);
}

// DoReFa's weight transform (Zhou et al. 2016): tanh, scaled into [0, 1] by the largest |tanh|,
// clamp_round there, mapped back to [-1, 1]. Composed of differentiable ops, so the gradient
// is tanh's and the max's (as in NNI) around clamp_round's straight-through estimator.
Tensor dorefa_weight(const Tensor& w, const TargetState& t) {
  if (!t.scale.defined() || !t.zero_point.defined()) return w;
  Tensor th = tanh(w);
  Tensor unit = add(div(th, mul(max(abs(th)), 2.f)), 0.5f);
  return sub(mul(quantize(unit, t, QuantMethod::ClampRound), 2.f), Tensor::scalar(1.f, w.device()));
}

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry();
    reg->pruning["bypass"] = [](const Tensor& x, TargetState&) { return x; };
    reg->pruning["mul"] = [](const Tensor& x, TargetState& t) { return maybe_mask(x, t, MaskMethod::Mul); };
    reg->pruning["add"] = [](const Tensor& x, TargetState& t) { return maybe_mask(x, t, MaskMethod::Add); };
    reg->pruning["movement_mul"] = [](const Tensor& x, TargetState& t) {
      auto it = t.extras.find("mvp_score");
      if (it == t.extras.end() || !t.mask.defined()) return maybe_mask(x, t, MaskMethod::Mul);
      Tensor score = expand_extra(it->second, x, t);
      return mul(x, straight_through(expand(t.mask, x.shape()), expand(score, x.shape())));
    };
    reg->pruning["movement_add"] = [](const Tensor& x, TargetState& t) {
      auto it = t.extras.find("mvp_score");
      if (it == t.extras.end() || !t.mask.defined()) return maybe_mask(x, t, MaskMethod::Add);
      Tensor score = expand_extra(it->second, x, t);
      // mask 1 -> 0, mask 0 -> -1000, then the straight-through score.
      Tensor additive = mul(sub(Tensor::ones({}, DType::F32, x.device()), t.mask), kSmallMaskValue);
      return add(x, straight_through(expand(additive, x.shape()), expand(score, x.shape())));
    };
    reg->pruning["slim_mul"] = [](const Tensor& x, TargetState& t) {
      auto it = t.extras.find("slim_factor");
      Tensor y = it == t.extras.end() ? x : mul(x, expand_extra(it->second, x, t));
      return maybe_mask(y, t, MaskMethod::Mul);
    };
    reg->quantization["bypass"] = [](const Tensor& x, TargetState&) { return x; };
    auto method = [](QuantMethod m) {
      return [m](const Tensor& x, TargetState& t) { return quantize(x, t, m); };
    };
    reg->quantization["clamp_round"] = method(QuantMethod::ClampRound);
    reg->quantization["qat_clamp_round"] = method(QuantMethod::QatClampRound);
    reg->quantization["lsq_clamp_round"] = method(QuantMethod::Lsq);
    reg->quantization["lsq_plus_clamp_round"] = method(QuantMethod::LsqPlus);
    reg->quantization["dorefa_clamp_round_output"] = method(QuantMethod::DoReFaOutput);
    reg->quantization["dorefa_clamp_round_weight"] = dorefa_weight;
    reg->quantization["bnn_clamp_round"] = [](const Tensor& x, TargetState& t) {
      return quantize(x, t, t.kind == TargetKind::Output ? QuantMethod::BnnOutput : QuantMethod::Bnn);
    };
    reg->quantization["naive_truncate"] = method(QuantMethod::Truncate);
    return reg;
  }();
  return *r;
}

std::string names(const std::map<std::string, ApplyMethod>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += (out.empty() ? "" : ", ") + k;
  return out;
}

const ApplyMethod& lookup(std::map<std::string, ApplyMethod>& m, const std::string& name,
                          const char* kind) {
  std::lock_guard<std::mutex> lk(registry().mu);
  auto it = m.find(name);
  SHRINK_CHECK(it != m.end(), "unknown ", kind, " apply_method '", name, "' (valid: ", names(m), ")");
  return it->second;
}

}  // namespace

const ApplyMethod& ApplyMethods::pruning(const std::string& name) {
  return lookup(registry().pruning, name, "pruning");
}
const ApplyMethod& ApplyMethods::quantization(const std::string& name) {
  return lookup(registry().quantization, name, "quantization");
}
void ApplyMethods::register_pruning(const std::string& name, ApplyMethod fn) {
  std::lock_guard<std::mutex> lk(registry().mu);
  registry().pruning[name] = std::move(fn);
}
void ApplyMethods::register_quantization(const std::string& name, ApplyMethod fn) {
  std::lock_guard<std::mutex> lk(registry().mu);
  registry().quantization[name] = std::move(fn);
}
std::vector<std::string> ApplyMethods::pruning_names() {
  std::vector<std::string> v;
  for (const auto& [k, f] : registry().pruning) v.push_back(k);
  return v;
}
std::vector<std::string> ApplyMethods::quantization_names() {
  std::vector<std::string> v;
  for (const auto& [k, f] : registry().quantization) v.push_back(k);
  return v;
}

const TargetSpace& TargetState::space(CompressorKind k) const {
  auto it = spaces.find(k);
  SHRINK_CHECK(it != spaces.end(), key(), " is not a ", config::to_string(k), " target");
  return it->second;
}

std::pair<float, float> quant_range(const std::string& dtype) {
  const bool is_uint = dtype.rfind("uint", 0) == 0;
  const bool is_int = !is_uint && dtype.rfind("int", 0) == 0;
  SHRINK_CHECK(is_uint || is_int, "quant_dtype '", dtype, "' must be int<N> or uint<N>");
  const int bits = std::stoi(dtype.substr(is_uint ? 4 : 3));
  SHRINK_CHECK(bits >= 1 && bits <= 32, "quant_dtype '", dtype, "': N must be in 1..32");
  if (is_uint) return {0.f, static_cast<float>(std::ldexp(1.0, bits) - 1.0)};
  const double hi = std::ldexp(1.0, bits - 1) - 1.0;
  return {static_cast<float>(-hi), static_cast<float>(hi)};
}

}  // namespace shrink::compression
