#include "compression/wrapper/module_wrapper.h"

#include <algorithm>

#include "compression/wrapper/apply_methods.h"
#include "framework/core/autograd.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

ModuleWrapper::ModuleWrapper(std::string module_name, std::shared_ptr<nn::Module> module)
    : name_(std::move(module_name)), module_(std::move(module)) {
  SHRINK_CHECK(module_ != nullptr, "ModuleWrapper: module '", name_, "' is null");
}

ModuleWrapper::~ModuleWrapper() {
  if (wrapped_) unwrap();
}

TargetState* ModuleWrapper::find(const std::string& target_name) {
  for (auto& t : targets_)
    if (t->name == target_name) return t.get();
  return nullptr;
}

std::vector<TargetState*> ModuleWrapper::targets() {
  std::vector<TargetState*> v;
  for (auto& t : targets_) v.push_back(t.get());
  return v;
}

TargetState& ModuleWrapper::add_target(const TargetSpace& space, CompressorKind space_kind) {
  SHRINK_CHECK(space.module_name == name_, "ModuleWrapper(", name_, "): target space of module '",
               space.module_name, "'");
  TargetState* t = find(space.target_name);
  if (!t) {
    targets_.push_back(std::make_unique<TargetState>());
    t = targets_.back().get();
    t->module_name = name_;
    t->name = space.target_name;
    t->kind = space.target_kind;
    if (t->kind == TargetKind::Parameter || t->kind == TargetKind::Buffer) {
      Tensor value = module_->param(t->name);
      if (value.defined()) {
        t->shape = value.shape();
        t->shape_known = true;
      }
    }
  }
  t->spaces[space_kind] = space;
  if (space_kind == CompressorKind::Pruning && t->kind == TargetKind::Parameter && t->shape_known &&
      !t->mask.defined()) {
    const std::string buf = t->name + "_mask";
    t->mask = Tensor::ones(t->shape, DType::F32, module_->param(t->name).device());
    if (!module_->has_buffer(buf)) {
      module_->register_buffer(buf, t->mask);
      registered_buffers_.push_back(buf);
    }
  }
  if (space_kind == CompressorKind::Quantization) {
    auto [lo, hi] = quant_range(std::string(space.settings.at("quant_dtype").as_string()));
    t->qmin = lo;
    t->qmax = hi;
  }
  return *t;
}

void ModuleWrapper::remove_space(TargetState& t, CompressorKind kind, const void* owner) {
  t.spaces.erase(kind);
  t.trackers.erase(std::remove_if(t.trackers.begin(), t.trackers.end(),
                                  [owner](const TargetState::Tracker& k) { return k.owner == owner; }),
                   t.trackers.end());
  if (kind == CompressorKind::Pruning || t.spaces.empty()) {
    const std::string buf = t.name + "_mask";
    auto it = std::find(registered_buffers_.begin(), registered_buffers_.end(), buf);
    if (it != registered_buffers_.end()) {
      if (module_->has_buffer(buf)) module_->remove_buffer(buf);
      registered_buffers_.erase(it);
    }
    t.mask = Tensor();
  }
  if (kind == CompressorKind::Quantization) {
    t.scale = t.zero_point = t.tracked_min = t.tracked_max = Tensor();
  }
  if (!t.spaces.empty()) return;
  targets_.erase(std::remove_if(targets_.begin(), targets_.end(),
                                [&t](const std::unique_ptr<TargetState>& p) { return p.get() == &t; }),
                 targets_.end());
}

void ModuleWrapper::set_mask(TargetState& t, const Tensor& mask) {
  SHRINK_CHECK(!mask.defined() || !t.shape_known ||
                   broadcast_shapes(t.shape, mask.shape(), "set_mask") == t.shape,
               name_, ".", t.name, ": mask ", mask.shape(), " does not broadcast to the target ",
               t.shape);
  if (!mask.defined()) {
    t.mask = Tensor();
    return;
  }
  NoGradGuard ng;
  const std::string buf = t.name + "_mask";
  if (module_->has_buffer(buf)) {
    // In place into the module's buffer (also after the mask was cleared), so the module's
    // state and everything holding the buffer see the new mask.
    // A per-channel mask fills it without a full-size temporary.
    Tensor& b = module_->buffer(buf);
    b.copy_broadcast_(mask);
    t.mask = b;
  } else if ((t.kind == TargetKind::Parameter || t.kind == TargetKind::Buffer) && t.shape_known) {
    t.mask = expand(mask.detach(), t.shape).contiguous_copy();  // tensors keep full-shape masks
  } else {
    t.mask = mask.detach().contiguous_copy();
  }
}

Tensor ModuleWrapper::patch(TargetState& t, const Tensor& value) {
  if (!value.defined()) return value;
  if (!t.shape_known || (t.kind != TargetKind::Parameter && t.kind != TargetKind::Buffer)) {
    t.shape = value.shape();
    t.shape_known = true;
  }
  for (auto& track : t.trackers) track(t, value);
  Tensor x = value;
  if (t.is(CompressorKind::Quantization)) {
    const auto& s = t.settings(CompressorKind::Quantization);
    x = ApplyMethods::quantization(std::string(s.at("apply_method").as_string()))(x, t);
  }
  if (t.is(CompressorKind::Pruning)) {
    const auto& s = t.settings(CompressorKind::Pruning);
    x = ApplyMethods::pruning(std::string(s.at("apply_method").as_string()))(x, t);
  }
  if (t.is(CompressorKind::Distillation)) t.observed = x;
  return x;
}

void ModuleWrapper::patch_inputs(std::vector<nn::Value>& inputs) {
  for (auto& t : targets_) {
    if (t->kind != TargetKind::Input) continue;
    const size_t i = t->spaces.begin()->second.input_index();
    SHRINK_CHECK(i < inputs.size(), name_, " (", module_->type_name(), "): target ", t->name,
                 " but forward received ", inputs.size(), " inputs");
    if (inputs[i].is_tensor()) inputs[i] = patch(*t, inputs[i].tensor());
  }
}

nn::Value ModuleWrapper::patch_outputs(const nn::Value& out) {
  nn::Value result = out;
  for (auto& t : targets_) {
    if (t->kind != TargetKind::Output) continue;
    const std::string key = t->name.substr(std::string("_output_").size());
    if (result.is_tensor()) {
      SHRINK_CHECK(key == "0", name_, " (", module_->type_name(), ") returns a tensor: target ",
                   t->name, " does not exist (available: _output_0)");
      result = patch(*t, result.tensor());
    } else if (result.is_list()) {
      auto& items = result.items();
      size_t idx = 0;
      bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
      if (numeric) idx = std::stoul(key);
      SHRINK_CHECK(numeric && idx < items.size(), name_, " (", module_->type_name(),
                   ") returns a list of ", items.size(), " values: target ", t->name,
                   " does not exist (available: _output_0.._output_", items.size() - 1, ")");
      if (items[idx].is_tensor()) items[idx] = patch(*t, items[idx].tensor());
    } else if (result.is_dict()) {
      SHRINK_CHECK(result.contains(key), name_, " (", module_->type_name(), ") returns a dict ",
                   "without key '", key, "' for target ", t->name);
      for (auto& [k, v] : result.entries())
        if (k == key && v.is_tensor()) v = patch(*t, v.tensor());
    }
  }
  return result;
}

void ModuleWrapper::wrap() {
  if (wrapped_) return;
  pre_ = module_->register_forward_pre_hook(
      [this](nn::Module& m, const std::vector<nn::Value>& in) -> std::optional<std::vector<nn::Value>> {
        // NNI's order: inputs, then (fused) parameters; m.param() sees a fold's redirects.
        std::vector<nn::Value> patched = in;
        patch_inputs(patched);
        if (fusion_.fold) fusion_.fold(m, patched);
        for (auto& t : targets_) {
          if (t->kind != TargetKind::Parameter && t->kind != TargetKind::Buffer) continue;
          Tensor original = m.param(t->name);
          if (original.defined()) m.redirect(t->name, patch(*t, original));
        }
        return patched;
      });
  post_ = module_->register_forward_hook(
      [this](nn::Module&, const std::vector<nn::Value>&, const nn::Value& out) -> std::optional<nn::Value> {
        return patch_outputs(fusion_.activation ? fusion_.activation(out) : out);
      });
  wrapped_ = true;
}

void ModuleWrapper::unwrap() {
  if (!wrapped_) return;
  pre_.remove();
  post_.remove();
  for (const auto& b : registered_buffers_)
    if (module_->has_buffer(b)) module_->remove_buffer(b);
  registered_buffers_.clear();
  wrapped_ = false;
}

void ModuleWrapper::bake(bool quantize) {
  NoGradGuard ng;
  for (auto& t : targets_) {
    if (t->kind != TargetKind::Parameter) continue;
    Tensor p = module_->param(t->name);
    if (!p.defined()) continue;
    Tensor v = p;
    if (quantize && t->is(CompressorKind::Quantization)) {
      const auto& s = t->settings(CompressorKind::Quantization);
      v = ApplyMethods::quantization(std::string(s.at("apply_method").as_string()))(v, *t);
    }
    if (t->mask.defined()) v = apply_mask(v, t->mask);
    Tensor dst = module_->parameter(t->name);
    dst.copy_(v);
  }
}

TargetState& find_target(const std::vector<TargetState*>& targets, const std::string& key, const char* what) {
  for (TargetState* t : targets)
    if (t->key() == key) return *t;
  std::string known;
  for (TargetState* t : targets) known += (known.empty() ? "" : ", ") + t->key();
  fail(what, ": no target '", key, "' (targets: ", known, ")");
}

std::map<std::string, std::unique_ptr<ModuleWrapper>> make_wrappers(
    nn::Module& model, const std::vector<TargetSpace>& spaces, CompressorKind kind) {
  std::map<std::string, std::unique_ptr<ModuleWrapper>> out;
  for (const TargetSpace& s : spaces) {
    auto& w = out[s.module_name];
    if (!w) {
      auto m = model.find(s.module_name);
      SHRINK_CHECK(m != nullptr, "make_wrappers: model has no module '", s.module_name, "'");
      w = std::make_unique<ModuleWrapper>(s.module_name, m);
    }
    w->add_target(s, kind);
  }
  return out;
}

}  // namespace shrink::compression
