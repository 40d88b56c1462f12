#include "compression/quantization/quantizer.h"

#include "compression/config/config_list.h"
#include "compression/wrapper/apply_methods.h"
#include "framework/core/autograd.h"
#include "framework/ops/ops.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

Quantizer::Quantizer(Host host, const boost::json::value& config_list, train::Trainer* trainer, const char* who)
    : Compressor(std::move(host), CompressorKind::Quantization, trainer, who) {
  std::vector<TargetSpace> spaces =
      config::parse_config_list(*model_, config_list, CompressorKind::Quantization, &warnings_);
  add_targets(spaces);
  for (const TargetSpace& s : spaces)
    if (!s.fused_modules.empty() && !fusions_.count(s.module_name))
      fusions_[s.module_name] = std::make_unique<ModuleFusion>(*model_, wrapper(s.module_name), s.fused_modules);
}

train::Trainer& Quantizer::trainer() { return hooks().trainer(); }

void Quantizer::require_levels() {
  for (TargetState* t : targets())
      if (!(t->qmax > t->qmin)) {
        const TargetSpace& s = t->space(CompressorKind::Quantization);
        fail("config[", s.config_index, "].quant_dtype: ", s.settings.at("quant_dtype").as_string(), " has a single ",
             "level (", t->qmin, "), so ", who_, " cannot quantize ", t->key(), " with it");
      }
}

void Quantizer::set_apply_method(TargetState& t, const std::string& method) {
  ApplyMethods::quantization(method);  // an unknown name fails here, not at the next forward
  t.spaces.at(CompressorKind::Quantization).settings["apply_method"] = method;
}

void Quantizer::set_apply_method(const std::string& method) {
  for (TargetState* t : targets()) set_apply_method(*t, method);
}

void Quantizer::add_tracker(std::function<void(TargetState&, const Tensor&, bool training)> fn) {
  auto shared = std::make_shared<decltype(fn)>(std::move(fn));
  for (TargetState* t : targets()) {
    nn::Module* module = &wrapper(t->module_name).module();
    t->trackers.push_back({this, [shared, module](TargetState& s, const Tensor& v) {
                             (*shared)(s, v, module->is_training());
                           }});
  }
}

bool Quantizer::legacy_target(const TargetState& t) const {
  return t.space(CompressorKind::Quantization).legacy;
}

void Quantizer::refresh_scale_zero_point(TargetState& t) {
  if (!t.tracked_min.defined() || !t.tracked_max.defined()) return;
  ScaleZeroPoint sz =
      compute_scale_zero_point(t.tracked_min, t.tracked_max, t.qmin, t.qmax, quant_scheme(t), legacy_target(t));
  t.scale = sz.scale;
  t.zero_point = sz.zero_point;
}

CalibrationConfig Quantizer::compress(int64_t max_steps, int64_t max_epochs) {
  run_fused(max_steps, max_epochs);
  return get_calibration_config();
}

void Quantizer::track_forward(const std::vector<nn::Value>& inputs) {
  NoGradGuard ng;
  (*model_)(inputs);
}

CalibrationConfig Quantizer::get_calibration_config() {
  CalibrationConfig out;
  {
    for (TargetState* t : targets()) {
      if (!t->scale.defined()) continue;
      TargetCalibration c;
      c.module = t->module_name;
      c.target = t->name;
      const auto& s = t->settings(CompressorKind::Quantization);
      c.quant_dtype = std::string(s.at("quant_dtype").as_string());
      c.quant_scheme = to_string(quant_scheme(*t));
      c.quant_bits = quant_bits(c.quant_dtype);
      c.qmin = t->qmin;
      c.qmax = t->qmax;
      NoGradGuard ng;
      c.scale = t->scale.detach().to(Device::CPU).contiguous_copy();
      c.zero_point = t->zero_point.detach().to(Device::CPU).contiguous_copy();
      if (t->tracked_min.defined() && t->tracked_max.defined()) {
        c.tracked_min = t->tracked_min.to(Device::CPU).contiguous_copy();
        c.tracked_max = t->tracked_max.to(Device::CPU).contiguous_copy();
      } else {  // what the scale and zero point can represent (NNI: s * (qmin - z), s * (qmax - z))
        c.tracked_min = mul(c.scale, sub(Tensor::full(c.zero_point.shape(), c.qmin), c.zero_point));
        c.tracked_max = mul(c.scale, sub(Tensor::full(c.zero_point.shape(), c.qmax), c.zero_point));
      }
      out[t->key()] = std::move(c);
    }
  }
  return out;
}

void Quantizer::update_calibration_config(const CalibrationConfig& config) {
  for (const auto& [key, c] : config) {
    TargetState* found = &find_target(targets(), key, "update_calibration_config");
    const auto& s = found->settings(CompressorKind::Quantization);
    const std::string dtype(s.at("quant_dtype").as_string());
    SHRINK_CHECK(c.quant_dtype == dtype && c.quant_scheme == to_string(quant_scheme(*found)),
                 "update_calibration_config: ", key, " is ", dtype, " ", to_string(quant_scheme(*found)),
                 ", the calibration says ", c.quant_dtype, " ", c.quant_scheme);
    SHRINK_CHECK(c.scale.defined() && c.zero_point.defined() && c.scale.shape() == c.zero_point.shape(),
                 "update_calibration_config: ", key, ": scale and zero point must be given with one shape");
    if (found->scale.defined())
      SHRINK_CHECK(found->scale.shape() == c.scale.shape(), "update_calibration_config: ", key, ": scale ",
                   c.scale.shape(), " does not match the target's ", found->scale.shape());
    const Device d = model_->parameter_device();
    NoGradGuard ng;
    const bool trainable = found->scale.defined() && found->scale.requires_grad();
    if (trainable) {  // learned scales (LSQ) keep their tensor (the optimizer holds it)
      found->scale.copy_(c.scale.to(d));
      if (found->zero_point.requires_grad()) found->zero_point.copy_(c.zero_point.to(d));
      else found->zero_point = c.zero_point.to(d).contiguous_copy();
    } else {
      found->scale = c.scale.to(d).contiguous_copy();
      found->zero_point = c.zero_point.to(d).contiguous_copy();
    }
    if (c.tracked_min.defined()) found->tracked_min = c.tracked_min.to(d).contiguous_copy();
    if (c.tracked_max.defined()) found->tracked_max = c.tracked_max.to(d).contiguous_copy();
    if (!trainable) calibration_loaded(*found);
  }
}

void Quantizer::release() {
  for (auto& [name, f] : fusions_) f->release();
}

void Quantizer::bake() {
  for (auto& [name, w] : wrappers()) {
    auto f = fusions_.find(name);
    if (f == fusions_.end() || !f->second->folds_batch_norm()) {
      w->bake(true);
      continue;
    }
    auto [weight, bias] = f->second->folded_parameters();
    NoGradGuard ng;
    for (TargetState* t : w->targets()) {
      if (!t->is(CompressorKind::Quantization) || (t->name != "weight" && t->name != "bias")) continue;
      const auto& method = t->settings(CompressorKind::Quantization).at("apply_method").as_string();
      Tensor& v = t->name == "weight" ? weight : bias;
      v = ApplyMethods::quantization(std::string(method))(v, *t);
    }
    f->second->bake_into_model(weight, bias);
  }
}

}  // namespace shrink::compression
