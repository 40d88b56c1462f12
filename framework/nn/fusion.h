// Fused fast paths for module chains whose intermediate results nothing can observe:
//  - a BatchNorm followed by a ReLU (with a residual added in between, as in a ResNet block)
//    runs as the single batch_norm_relu op, in training too: the same values and gradients bit
//    for bit, three to five fewer passes over the activation;
//  - in inference (evaluation mode, no gradient to record), a Conv2d before them runs with the
//    batch norm, residual and ReLU folded into its output pass (conv2d_batch_norm), bit for bit.
// A chain takes a fused op only when every module in it is of its exact built-in type and none
// is intercepted (no pre-hook, hook or forward override: what compression's wrappers, observers
// and module fusion install); otherwise the modules run one by one, in the model's order, so
// hooks see what they always saw.
#pragma once
#include <functional>

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

// Whether m is exactly a ReLU module (not a subclass).
bool is_relu(const Module& m);

// Whether bn and relu would run fused now: fusion is enabled, bn is exactly a BatchNorm1d or
// BatchNorm2d without externally computed batch statistics, relu exactly a ReLU, and neither is
// intercepted.
bool fuses_batch_norm_relu(const Module& bn, const Module& relu);

// relu(bn(x) + residual), or relu(bn(x)) when residual is undefined: one op when
// fuses_batch_norm_relu(bn, relu), else bn, the add and relu in turn.
Tensor batch_norm_relu(Module& bn, Module& relu, const Tensor& x, const Tensor& residual = Tensor());

// Whether conv, bn and relu (null: no ReLU) would run as one inference op on x now: fusion is
// enabled, the modules are exactly a Conv2d, a BatchNorm2d in evaluation with running
// statistics and a ReLU, none is intercepted, and no gradient is to be recorded (grad mode off,
// or neither x nor any of their parameters requires grad).
bool fuses_conv_batch_norm(const Module& conv, const Module& bn, const Module* relu, const Tensor& x);

// relu(bn(conv(x)) + residual()) (relu null: no ReLU; residual empty: none), as one op when
// fuses_conv_batch_norm (an intercepted ReLU then runs as its module on the result), else conv
// and then batch_norm_relu (fused or not). The residual is a callback so that its modules run
// after every module of the chain that anyone observes, as in a model written
// relu(bn(conv(x)) + residual): fused, before conv (nobody sees conv or bn run); unfused, after
// conv, and after bn when bn runs as its module.
Tensor conv_batch_norm_relu(Module& conv, Module& bn, Module* relu, const Tensor& x,
                            const std::function<Tensor()>& residual = nullptr);

}  // namespace shrink::nn
