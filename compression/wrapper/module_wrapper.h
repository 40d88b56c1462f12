// ModuleWrapper: compression of one module through the framework's hooks, without replacing
// the module. A pre-hook patches inputs and hands forward patched parameters through the
// parameter accessor (the stored parameter stays the trainable leaf and receives the
// gradient); a forward hook patches outputs. Each target's value goes through NNI's stages in
// order: track/observe -> fake-quantize -> mask -> record for distillation.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compression/wrapper/target_state.h"
#include "framework/nn/module.h"

namespace shrink::compression {

class ModuleWrapper {
 public:
  ModuleWrapper(std::string module_name, std::shared_ptr<nn::Module> module);
  ~ModuleWrapper();
  ModuleWrapper(const ModuleWrapper&) = delete;
  ModuleWrapper& operator=(const ModuleWrapper&) = delete;

  const std::string& name() const { return name_; }
  nn::Module& module() { return *module_; }
  std::shared_ptr<nn::Module> module_ptr() { return module_; }

  // Adds a TargetSpace (a target may be configured by several compressor kinds). Parameter and
  // buffer targets get their shape now and, for pruning, an all-ones "<name>_mask" buffer.
  TargetState& add_target(const TargetSpace& space, CompressorKind kind);
  // Takes a compressor's space of kind `kind` off `t`, with the trackers `owner` added; a target
  // left with no space is removed (its mask buffer too). `t` may be gone afterwards.
  void remove_space(TargetState& t, CompressorKind kind, const void* owner);
  TargetState* find(const std::string& target_name);
  std::vector<TargetState*> targets();

  // Installs / removes the hooks. unwrap() also removes the buffers the wrapper registered, so
  // the module is exactly as before (its parameters were never replaced).
  void wrap();
  void unwrap();
  bool wrapped() const { return wrapped_; }

  // Replaces the mask of a target (copied into the existing mask buffer for parameters).
  void set_mask(TargetState& t, const Tensor& mask);
  // Writes masks (and, if `quantize`, fake quantization) of parameter targets into the
  // parameters themselves (DECISIONS row 12: explicit, never on unwrap).
  void bake(bool quantize = false);

  // The staged transformation of one value (used by the hooks; public for tests).
  Tensor patch(TargetState& t, const Tensor& value);

  // Module fusion (quantization's fuse_names, compression/quantization/module_fusion.h):
  // `fold` runs in the pre-hook after the inputs are patched and before the parameters are, and
  // may redirect parameters (a batch norm folded into the weight and bias); `activation` is
  // applied to the module's output before the output targets are patched (a fused ReLU).
  struct Fusion {
    std::function<void(nn::Module&, const std::vector<nn::Value>& patched_inputs)> fold;
    std::function<nn::Value(const nn::Value&)> activation;
  };
  void set_fusion(Fusion fusion) { fusion_ = std::move(fusion); }

 private:
  void patch_inputs(std::vector<nn::Value>& inputs);
  nn::Value patch_outputs(const nn::Value& out);

  std::string name_;
  std::shared_ptr<nn::Module> module_;
  std::vector<std::unique_ptr<TargetState>> targets_;
  std::vector<std::string> registered_buffers_;
  nn::HookHandle pre_, post_;
  Fusion fusion_;
  bool wrapped_ = false;
};

// The target whose key ("<module>.<target>") is `key`; an unknown key is an error that names
// `what` (the caller, e.g. "update_masks") and every known key.
TargetState& find_target(const std::vector<TargetState*>& targets, const std::string& key, const char* what);

// Wraps every module named by the target spaces (one wrapper per module, targets merged).
std::map<std::string, std::unique_ptr<ModuleWrapper>> make_wrappers(
    nn::Module& model, const std::vector<TargetSpace>& spaces, CompressorKind kind);

}  // namespace shrink::compression
