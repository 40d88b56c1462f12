// The v1 compressor API (../shared/spec/compressor-v1-overview.md) in C++, for code written
// against NNI's first interface and for custom algorithms in its style:
//
//   auto pruner = v1::LevelPruner(model, json::parse(R"([{"sparsity": 0.8, "op_types": ["default"]}])"));
//   pruner.compress();                          // the masks now take effect on every forward
//   for (epoch ...) { pruner.update_epoch(epoch); for (batch ...) { train; pruner.step(); } }
//   pruner.export_model("model.safetensors", "mask.safetensors", "model.onnx", {1, 1, 28, 28});
//
// A custom pruner overrides calc_mask(layer, config); a custom quantizer quantize_weight /
// quantize_input / quantize_output. Config lists are checked and resolved by the config spec
// layer with the legacy rules (config/config_list.h): `sparsity`, `quant_types`, `quant_bits`,
// `op_types: ["default"]` (the kind's weighted layer types), a later sub-config taking a layer from
// an earlier one, `exclude`. The callbacks receive the layer and its sub-config as written.
//
// Semantics, as the document states them:
//   - calc_mask is hooked to forward: it runs before every forward of its layer (and once in
//     compress(), so export works before any forward); the layer computes with weight * mask. The
//     mask must have the weight's shape.
//   - quantize_weight / quantize_input / quantize_output run on every forward of a layer whose
//     sub-config lists that type in quant_types (weight, input, output). Their result goes
//     forward exactly, and the gradient passes straight through to the unquantized value (NNI's
//     QuantGrad).
//   - update_epoch(epoch) and step() may always be called; they do nothing unless overridden.
// Destroying the compressor removes its hooks.
#pragma once
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compression/config/target_space.h"
#include "framework/nn/module.h"

namespace shrink::compression::v1 {

// A layer the config list selected.
struct LayerInfo {
  std::string name;  // dotted module name
  std::string type;  // Module::type_name()
  nn::Module* module = nullptr;
};

class Compressor {
 public:
  virtual ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;

  // Hooks every selected layer, so that the compression takes effect on forward; returns the model.
  // All or nothing: when a callback throws, no hook stays.
  std::shared_ptr<nn::Module> compress();
  virtual void update_epoch(int64_t epoch) { (void)epoch; }
  virtual void step() {}

  std::shared_ptr<nn::Module> bound_model() const { return model_; }
  // The selected layers in model order, each with the sub-config that selected it.
  struct Selected {
    LayerInfo layer;
    boost::json::object config;
    std::vector<std::string> targets;  // canonical target names ("weight", "_input_0", "_output_0")
  };
  const std::vector<Selected>& selected() const { return selected_; }
  // Warnings of the config list (names the model lacks, ...).
  const std::vector<std::string>& warnings() const { return warnings_; }

 protected:
  // Throws config::ConfigError (`config[i].key: ...`) for an invalid list.
  Compressor(std::shared_ptr<nn::Module> model, const boost::json::value& config_list, config::CompressorKind kind);
  virtual void install(const Selected& s) = 0;
  void remove_hooks();
  std::vector<nn::HookHandle> handles_;
  bool suspended_ = false;  // hooks installed but standing aside (Pruner::export_model)

 private:
  std::shared_ptr<nn::Module> model_;
  std::vector<Selected> selected_;
  std::vector<std::string> warnings_;
  bool compressed_ = false;
};

class Pruner : public Compressor {
 public:
  Pruner(std::shared_ptr<nn::Module> model, const boost::json::value& config_list);

  // The mask of `layer`'s weight: the weight's shape, 0 where pruned, 1 where kept.
  virtual Tensor calc_mask(const LayerInfo& layer, const boost::json::object& config) = 0;

  // The newest mask of every selected layer, keyed "<layer>.weight" (masks/mask_io.h's keys).
  std::map<std::string, Tensor> get_masks() const { return masks_; }

  // model_path: the state dict with every mask multiplied into its weight (safetensors);
  // mask_path: the masks (safetensors, mask_io.h); onnx_path: the masked model as ONNX for an
  // input of `input_shape` (needed then). Empty paths are skipped. The model stays compressed.
  void export_model(const std::string& model_path, const std::string& mask_path = "",
                    const std::string& onnx_path = "", const Shape& input_shape = {});

 private:
  void install(const Selected& s) override;
  Tensor mask_of(const Selected& s);
  std::map<std::string, Tensor> masks_;
};

class Quantizer : public Compressor {
 public:
  Quantizer(std::shared_ptr<nn::Module> model, const boost::json::value& config_list);

  // Each returns what goes forward in place of its argument; the defaults leave it unchanged.
  virtual Tensor quantize_weight(const Tensor& weight, const boost::json::object& config, const LayerInfo& layer);
  virtual Tensor quantize_output(const Tensor& output, const boost::json::object& config, const LayerInfo& layer);
  virtual std::vector<Tensor> quantize_input(const std::vector<Tensor>& inputs, const boost::json::object& config,
                                             const LayerInfo& layer);

 private:
  void install(const Selected& s) override;
};

// NNI v1's LevelPruner: per layer, k = floor(numel * sparsity) and the mask keeps the weights whose
// magnitude exceeds the k-th smallest magnitude (all ones for k = 0), recomputed on every forward.
class LevelPruner : public Pruner {
 public:
  using Pruner::Pruner;
  Tensor calc_mask(const LayerInfo& layer, const boost::json::object& config) override;
};

}  // namespace shrink::compression::v1
