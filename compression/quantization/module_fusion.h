// Module fusion for quantization (fuse_names; nni-semantics §2.7): a Conv2d or Linear followed by
// a batch norm (and/or a ReLU), or a batch norm followed by a ReLU, quantized as one module, the
// way an integer inference engine runs them.
//
// While fused, the batch norm and the ReLU run as the identity (Module::override_forward) and the
// leader's wrapper does their work:
//   batch norm: before the leader's parameters are patched, its weight and bias are replaced by
//     W' = W * g,  b' = (b - mean) * g + beta,  g = gamma / sqrt(var + eps)  (per output channel)
//     so that weight quantization sees the folded weight. mean/var are the batch norm's running
//     statistics; in training they are first updated by running the batch norm on the leader's
//     unquantized output (without gradient), as NNI does. Without running statistics the batch's
//     own (unbiased variance) are used. gamma and beta keep receiving gradients through W', b'.
//   ReLU: applied to the leader's output before the output targets are quantized.
// The checks on fuse_names (types, targets, double use) are the config layer's (config/fuse.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "compression/wrapper/module_wrapper.h"

namespace shrink::compression {

// What a Conv2d or Linear module computes, with the given weight and bias instead of its own
// (bypassing its hooks): the unquantized or folded output that fusion and bias correction need.
Tensor layer_forward(nn::Module& layer, const Tensor& x, const Tensor& weight, const Tensor& bias);

class ModuleFusion {
 public:
  // `names`: the leader (wrapped by `leader`) first, then the modules fused into it.
  ModuleFusion(nn::Module& model, ModuleWrapper& leader, const std::vector<std::string>& names);
  ~ModuleFusion();
  ModuleFusion(const ModuleFusion&) = delete;
  ModuleFusion& operator=(const ModuleFusion&) = delete;

  // The folded weight and bias with the batch norm's current running statistics (eval-mode
  // folding); undefined tensors when no batch norm is fused.
  std::pair<Tensor, Tensor> folded_parameters();
  // Export: writes `weight` and `bias` (the folded ones, possibly fake-quantized) into the leader
  // and replaces the batch norm in the model by an Identity module, so that the plain model
  // computes what the fused one did.
  void bake_into_model(const Tensor& weight, const Tensor& bias);
  bool folds_batch_norm() const { return bn_ != nullptr; }
  // Ends the fusion: the fused modules run as themselves again.
  void release();

 private:
  void fold(nn::Module& leader, const std::vector<nn::Value>& inputs);
  std::pair<Tensor, Tensor> fold_with(const Tensor& mean, const Tensor& var, const Tensor& w, const Tensor& b);

  nn::Module& model_;
  ModuleWrapper& leader_;
  std::vector<std::string> names_;
  std::string bn_name_;
  std::shared_ptr<nn::Module> bn_;  // null when no batch norm is fused
  std::vector<nn::HookHandle> identities_;
  nn::HookHandle bn_identity_;
  bool baked_ = false;
};

}  // namespace shrink::compression
