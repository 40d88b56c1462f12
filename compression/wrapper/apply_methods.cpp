#include "compression/wrapper/apply_methods.h"

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

// The extra tensor (score, factor) has the target's shrunk shape; the target's granularity
// expands it back (broadcastably) over the value.
Tensor expand_extra(const Tensor& extra, const Tensor& value, const TargetState& t) {
  if (extra.shape() == value.shape()) return extra;
  const auto& s = t.settings(CompressorKind::Pruning);
  auto it = s.find("granularity");
  if (it == s.end()) return extra;
  const auto& g = it->value();
  std::optional<Scaling> scaling;
  if (g.is_string()) scaling = Scaling::from_granularity(std::string(g.as_string()));
  else if (g.is_array()) {
    std::vector<int64_t> blocks;
    for (const auto& b : g.as_array()) blocks.push_back(b.to_number<int64_t>());
    scaling = Scaling::from_blocks(blocks);
  }
  if (!scaling) return extra;  // broadcast as is
  return scaling->expand(extra, value.shape(), /*full=*/false);
}

// Forward: the mask; backward: the incoming gradient passes to the score unchanged.
Tensor straight_through(const Tensor& mask, const Tensor& score) {
  return add(mask, sub(score, score.detach()));
}

Tensor maybe_mask(const Tensor& x, const TargetState& t, MaskMethod m) {
  return t.mask.defined() ? apply_mask(x, t.mask, m) : x;
}

Tensor quantize(const Tensor& x, const TargetState& t, bool clip_grad) {
  if (!t.scale.defined() || !t.zero_point.defined()) return x;
  return fake_quantize(x, t.scale, t.zero_point, t.qmin, t.qmax, clip_grad);
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
    reg->quantization["clamp_round"] = [](const Tensor& x, TargetState& t) { return quantize(x, t, false); };
    reg->quantization["qat_clamp_round"] = [](const Tensor& x, TargetState& t) { return quantize(x, t, true); };
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
