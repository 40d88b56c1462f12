#include "compression/quantization/binary_quantizers.h"

#include <set>

#include "framework/core/autograd.h"
#include "framework/ops/ops.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

namespace {

bool has_granularity(const TargetState& t) {
  const auto& g = t.settings(CompressorKind::Quantization).at("granularity");
  return !(g.is_null() || (g.is_string() && g.as_string() == "default"));
}

// NNI's ACTIVATION_LIST, the modules whose output DoReFa may quantize (limited to what exists).
bool is_activation(const std::string& type) {
  static const std::set<std::string> kinds = {
      "ReLU", "RReLU", "LeakyReLU", "PReLU", "Softplus", "ELU", "CELU", "SELU", "GELU", "ReLU6", "Sigmoid",
      "Tanh", "Softsign", "Hardtanh", "Threshold", "Tanhshrink", "Softshrink", "Hardshrink", "LogSigmoid",
      "Softmin", "Softmax", "LogSoftmax", "Hardswish"};
  return kinds.count(type) != 0;
}

Tensor scalar_on(float v, Device d) { return Tensor::full({}, v, d); }

// The fixed scale and zero point follow the value to its device (the model may move after the
// quantizer was made).
void follow_device(TargetState& t, const Tensor& v) {
  if (t.scale.defined() && t.scale.device() != v.device()) {
    t.scale = t.scale.to(v.device());
    t.zero_point = t.zero_point.to(v.device());
  }
}

}  // namespace

DoReFaQuantizer::DoReFaQuantizer(Host host, const boost::json::value& config_list,
                                 train::Trainer& trainer)
    : Quantizer(std::move(host), config_list, &trainer, "DoReFaQuantizer") {
  require_levels();
  for (TargetState* t : targets()) {
    const TargetSpace& space = t->space(CompressorKind::Quantization);
    const std::string at = "config[" + std::to_string(space.config_index) + "]";
    SHRINK_CHECK(!t->settings(CompressorKind::Quantization).at("quant_scheme").is_null(), at, ".quant_scheme: ",
                 who_, " needs quant_scheme set ('affine' or 'symmetric') for ", t->key());
    SHRINK_CHECK(!has_granularity(*t), at, ".granularity: ", who_, " quantizes per tensor (", t->key(), ")");
    if (t->kind == TargetKind::Output)
      SHRINK_CHECK(is_activation(space.module_type), at, ".target_names: ", who_, " quantizes outputs of ",
                   "activation modules only; ", t->key(), " is a ", space.module_type);
    if (t->kind != TargetKind::Input && quant_scheme(*t) != QuantScheme::Affine)
      warnings_.push_back(who_ + ": " + t->key() + " uses DoReFa's fixed affine range [0, 1]");
    if (t->kind == TargetKind::Input) {
      set_apply_method(*t, "clamp_round");
    } else {
      // The fixed range [0, 1], affine: s = 1 / (qmax - qmin), z = qmin - round(0 / s).
      t->scale = scalar_on(1.f / (t->qmax - t->qmin), model_->parameter_device());
      t->zero_point = scalar_on(t->qmin, model_->parameter_device());
      set_apply_method(*t, t->kind == TargetKind::Output ? "dorefa_clamp_round_output" : "dorefa_clamp_round_weight");
    }
  }
  add_tracker([this](TargetState& t, const Tensor& v, bool) {
    if (t.kind != TargetKind::Input) return follow_device(t, v);
    auto [lo, hi] = block_min_max(v, std::nullopt);  // this batch's range only
    t.tracked_min = lo;
    t.tracked_max = hi;
    refresh_scale_zero_point(t);
  });
}

BNNQuantizer::BNNQuantizer(Host host, const boost::json::value& config_list,
                           train::Trainer& trainer)
    : Quantizer(std::move(host), config_list, &trainer, "BNNQuantizer") {
  for (TargetState* t : targets()) {
    const TargetSpace& space = t->space(CompressorKind::Quantization);
    SHRINK_CHECK(!has_granularity(*t), "config[", space.config_index, "].granularity: ", who_,
                 " binarises per element; granularity is not supported (", t->key(), ")");
    t->scale = scalar_on(1.f, model_->parameter_device());
    t->zero_point = scalar_on(0.f, model_->parameter_device());
  }
  warnings_.push_back(who_ + ": quant_dtype is ignored; every target is binarised to {-1, +1}");
  set_apply_method("bnn_clamp_round");
  add_tracker([](TargetState& t, const Tensor& v, bool) { follow_device(t, v); });
  hooks().after_step([this] {
    NoGradGuard ng;
    for (TargetState* t : targets()) {
      if (t->kind != TargetKind::Parameter) continue;
      Tensor& p = wrapper(t->module_name).module().parameter(t->name);
      if (p.defined()) p.copy_(clamp(p, -1.f, 1.f));
    }
  });
}

NaiveQuantizer::NaiveQuantizer(Host host, const boost::json::value& config_list)
    : Quantizer(std::move(host), config_list, nullptr, "NaiveQuantizer") {
  for (TargetState* t : targets()) {
    if (t->name != "weight")
      warnings_.push_back(who_ + ": quantizes weights only; " + t->key() + " is left as is");
    auto& settings = t->spaces.at(CompressorKind::Quantization).settings;
    if (settings.at("quant_dtype").as_string() != "int8")
      warnings_.push_back(who_ + ": always 8 bits (-127..127); " + t->key() + " asked for " +
                          std::string(settings.at("quant_dtype").as_string()));
    settings["quant_dtype"] = "int8";  // what the calibration then reports
    set_apply_method(*t, t->name == "weight" ? "naive_truncate" : "bypass");
    t->qmin = -127.f;
    t->qmax = 127.f;
  }
  add_tracker([](TargetState& t, const Tensor& v, bool) {
    if (t.name != "weight") return;
    NoGradGuard ng;
    Tensor s = div(max(abs(v.detach())), Tensor::full({}, 127.f, v.device()));
    t.scale = t.scale.defined() ? maximum(t.scale, s) : s;
    t.zero_point = Tensor::zeros({}, DType::F32, s.device());
  });
}

CalibrationConfig NaiveQuantizer::compress(int64_t, int64_t) {
  SHRINK_CHECK(fused().size() == 1, who_, " does not train, so it cannot drive a fused run; build it before the ",
               "compressors that train");
  NoGradGuard ng;
  for (TargetState* t : targets())
    if (t->name == "weight" && t->kind == TargetKind::Parameter)
      for (auto& track : t->trackers)
        if (track.owner == this) track(*t, wrapper(t->module_name).module().param(t->name));
  return get_calibration_config();
}

}  // namespace shrink::compression
