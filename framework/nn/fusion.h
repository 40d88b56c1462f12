// Fused fast paths for module chains whose intermediate results nothing can observe. A
// BatchNorm followed by a ReLU (with a residual added in between, as in a ResNet block) runs as
// the single batch_norm_relu op: the same values and gradients bit for bit, three to five fewer
// passes over the activation. A chain takes the fused op only when every module in it is of its
// exact built-in type and none is intercepted (no pre-hook, hook or forward override: what
// compression's wrappers, observers and module fusion install); otherwise the modules run one
// by one, so hooks see what they always saw.
#pragma once
#include "framework/nn/module.h"

namespace shrink::nn {

// Whether fused paths may run on this thread (on by default).
bool fusion_enabled();

// Turns fused paths on or off on this thread for its lifetime. Graph tracing turns them off: it
// needs every module's own ops on the tape.
class FusionGuard {
 public:
  explicit FusionGuard(bool enabled);
  ~FusionGuard();
  FusionGuard(const FusionGuard&) = delete;
  FusionGuard& operator=(const FusionGuard&) = delete;

 private:
  bool prev_;
};

// Whether bn and relu would run fused now: fusion is enabled, bn is exactly a BatchNorm1d or
// BatchNorm2d without externally computed batch statistics, relu exactly a ReLU, and neither is
// intercepted.
bool fuses_batch_norm_relu(const Module& bn, const Module& relu);

// relu(bn(x) + residual), or relu(bn(x)) when residual is undefined: one op when
// fuses_batch_norm_relu(bn, relu), else bn, the add and relu in turn.
Tensor batch_norm_relu(Module& bn, Module& relu, const Tensor& x, const Tensor& residual = Tensor());

}  // namespace shrink::nn
