#include "compression/v1/v1_api.h"

#include <algorithm>
#include <cmath>

#include "compression/config/config_list.h"
#include "compression/export/onnx_export.h"
#include "compression/pruning/mask_io.h"
#include "framework/core/autograd.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"

namespace shrink::compression::v1 {

namespace {
// What goes forward is `q`; the gradient reaches `x` unchanged (straight through).
Tensor straight_through(const Tensor& x, const Tensor& q) {
  SHRINK_CHECK(q.shape() == x.shape(), "a v1 quantizer returned shape ", shape_str(q.shape()), " for a value of shape ",
               shape_str(x.shape()));
  return add(q.detach(), sub(x, x.detach()));  // q exactly, plus a zero that carries x's gradient
}
}  // namespace

Compressor::Compressor(std::shared_ptr<nn::Module> model, const boost::json::value& config_list,
                       config::CompressorKind kind)
    : model_(std::move(model)) {
  SHRINK_CHECK(model_ != nullptr, "v1 compressor: no model");
  const std::vector<config::TargetSpace> spaces = config::parse_config_list(*model_, config_list, kind, &warnings_);
  for (const config::TargetSpace& t : spaces) {
    auto it = std::find_if(selected_.begin(), selected_.end(), [&](const Selected& s) { return s.layer.name == t.module_name; });
    if (it == selected_.end()) {
      Selected s;
      s.layer = {t.module_name, t.module_type, model_->find(t.module_name).get()};
      s.config = config_list.as_array().at(t.config_index).as_object();
      selected_.push_back(std::move(s));
      it = selected_.end() - 1;
    }
    it->targets.push_back(t.target_name);
  }
  // Model order (the spec layer orders by sub-config first).
  std::map<std::string, size_t> order;
  for (const auto& [name, m] : model_->named_modules()) order.emplace(name, order.size());
  std::stable_sort(selected_.begin(), selected_.end(),
                   [&](const Selected& a, const Selected& b) { return order.at(a.layer.name) < order.at(b.layer.name); });
}

Compressor::~Compressor() { remove_hooks(); }

void Compressor::remove_hooks() {
  for (auto& h : handles_) h.remove();
  handles_.clear();
}

std::shared_ptr<nn::Module> Compressor::compress() {
  if (compressed_) return model_;
  try {
    for (const Selected& s : selected_) install(s);
  } catch (...) {
    remove_hooks();  // all or nothing: a retry installs each hook once
    throw;
  }
  compressed_ = true;
  return model_;
}

// ---- Pruner ----

Pruner::Pruner(std::shared_ptr<nn::Module> model, const boost::json::value& config_list)
    : Compressor(std::move(model), config_list, config::CompressorKind::Pruning) {}

Tensor Pruner::mask_of(const Selected& s) {
  Tensor mask;
  {
    NoGradGuard ng;
    mask = calc_mask(s.layer, s.config);
  }
  const Tensor w = s.layer.module->param("weight");
  SHRINK_CHECK(mask.defined() && mask.shape() == w.shape(), "calc_mask for '", s.layer.name, "' returned shape ",
               mask.defined() ? shape_str(mask.shape()) : std::string("(none)"), "; the weight has ",
               shape_str(w.shape()));
  masks_[s.layer.name + ".weight"] = mask.to(w.device());
  return masks_[s.layer.name + ".weight"];
}

void Pruner::install(const Selected& s) {
  SHRINK_CHECK(s.layer.module->has_parameter("weight"), "v1 pruner: layer '", s.layer.name, "' has no weight");
  mask_of(s);
  handles_.push_back(s.layer.module->register_forward_pre_hook(
      [this, s](nn::Module& m, const std::vector<nn::Value>&) -> std::optional<std::vector<nn::Value>> {
        if (suspended_) return std::nullopt;
        const Tensor mask = mask_of(s);
        m.redirect("weight", mul(m.param("weight"), mask));
        return std::nullopt;
      }));
}

void Pruner::export_model(const std::string& model_path, const std::string& mask_path, const std::string& onnx_path,
                          const Shape& input_shape) {
  compress();
  nn::Module& model = *bound_model();
  if (!model_path.empty()) {
    std::map<std::string, Tensor> state = model.state_dict();
    for (const auto& [key, mask] : masks_) state[key] = mul(state.at(key), mask);
    io::save_safetensors(model_path, state);
  }
  if (!mask_path.empty()) save_masks(mask_path, masks_);
  if (!onnx_path.empty()) {
    SHRINK_CHECK(!input_shape.empty(), "export_model: an onnx_path needs the input_shape");
    // The graph must see plain layers: the hooks stand aside (no callback runs, none moves in its
    // hook list) while the masks sit in the weights, and both come back however the export ends.
    struct Suspend {
      bool& flag;
      std::vector<std::pair<Tensor, Tensor>> saved;  // (weight, its unmasked values)
      ~Suspend() {
        NoGradGuard ng;
        for (auto& [w, values] : saved) w.copy_(values);
        flag = false;
      }
    } suspend{suspended_, {}};
    suspended_ = true;
    {
      NoGradGuard ng;
      for (const Selected& s : selected()) {
        Tensor w = s.layer.module->param("weight");
        suspend.saved.emplace_back(w, w.contiguous_copy());
        w.copy_(mul(w, masks_.at(s.layer.name + ".weight")));
      }
    }
    export_onnx(model, onnx_path, {input_shape});
  }
}

Tensor LevelPruner::calc_mask(const LayerInfo& layer, const boost::json::object& config) {
  const Tensor w = layer.module->param("weight");
  const boost::json::value* ratio = config.if_contains("sparsity");
  if (!ratio) ratio = config.if_contains("sparse_ratio");
  SHRINK_CHECK(ratio && ratio->is_number(), "LevelPruner: the config of '", layer.name, "' has no sparsity");
  std::vector<float> magnitude = w.to_vector();
  for (float& v : magnitude) v = std::fabs(v);
  const auto k = static_cast<int64_t>(static_cast<double>(magnitude.size()) * ratio->to_number<double>());
  if (k == 0) return Tensor::ones(w.shape());
  std::vector<float> sorted = magnitude;
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end());
  const float threshold = sorted[static_cast<size_t>(k - 1)];
  std::vector<float> mask(magnitude.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = magnitude[i] > threshold ? 1.f : 0.f;
  return Tensor::from_vector(mask, w.shape());
}

// ---- Quantizer ----

Quantizer::Quantizer(std::shared_ptr<nn::Module> model, const boost::json::value& config_list)
    : Compressor(std::move(model), config_list, config::CompressorKind::Quantization) {}

Tensor Quantizer::quantize_weight(const Tensor& weight, const boost::json::object&, const LayerInfo&) { return weight; }
Tensor Quantizer::quantize_output(const Tensor& output, const boost::json::object&, const LayerInfo&) { return output; }
std::vector<Tensor> Quantizer::quantize_input(const std::vector<Tensor>& inputs, const boost::json::object&,
                                              const LayerInfo&) {
  return inputs;
}

void Quantizer::install(const Selected& s) {
  auto has = [&](const char* prefix) {
    return std::any_of(s.targets.begin(), s.targets.end(), [&](const std::string& t) { return t.rfind(prefix, 0) == 0; });
  };
  const bool weight = std::find(s.targets.begin(), s.targets.end(), "weight") != s.targets.end();
  const bool input = has("_input_"), output = has("_output_");
  if (weight || input)
    handles_.push_back(s.layer.module->register_forward_pre_hook(
        [this, s, weight, input](nn::Module& m, const std::vector<nn::Value>& in) -> std::optional<std::vector<nn::Value>> {
          if (weight) {
            const Tensor w = m.param("weight");
            m.redirect("weight", straight_through(w, quantize_weight(w, s.config, s.layer)));
          }
          if (!input) return std::nullopt;
          std::vector<Tensor> tensors;
          for (const nn::Value& v : in) tensors.push_back(v.tensor());
          const std::vector<Tensor> q = quantize_input(tensors, s.config, s.layer);
          SHRINK_CHECK(q.size() == tensors.size(), "quantize_input for '", s.layer.name, "' returned ", q.size(),
                       " tensors for ", tensors.size(), " inputs");
          std::vector<nn::Value> out;
          for (size_t i = 0; i < q.size(); ++i) out.emplace_back(straight_through(tensors[i], q[i]));
          return out;
        }));
  if (output)
    handles_.push_back(s.layer.module->register_forward_hook(
        [this, s](nn::Module&, const std::vector<nn::Value>&, const nn::Value& y) -> std::optional<nn::Value> {
          return nn::Value(straight_through(y.tensor(), quantize_output(y.tensor(), s.config, s.layer)));
        }));
}

}  // namespace shrink::compression::v1
