#include "framework/nn/fusion.h"

#include <typeinfo>

#include "framework/core/autograd.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace shrink::nn {

namespace {
thread_local bool fusion_on = true;
}  // namespace

bool fusion_enabled() { return fusion_on; }

FusionGuard::FusionGuard(bool enabled) : prev_(fusion_on) { fusion_on = enabled; }
FusionGuard::~FusionGuard() { fusion_on = prev_; }

bool fuses_batch_norm_relu(const Module& bn, const Module& relu) {
  if (!fusion_on || bn.intercepted() || relu.intercepted() || typeid(relu) != typeid(ReLU)) return false;
  // Exact types: a subclass may override forward, which the fused op would skip.
  if (typeid(bn) != typeid(BatchNorm2d) && typeid(bn) != typeid(BatchNorm1d)) return false;
  return !static_cast<const BatchNorm&>(bn).has_batch_statistics();
}

Tensor batch_norm_relu(Module& bn, Module& relu, const Tensor& x, const Tensor& residual) {
  if (fuses_batch_norm_relu(bn, relu)) {
    ModuleScope scope(&bn);  // the fused op's node names the batch norm as its module
    return static_cast<BatchNorm&>(bn).forward_relu(x, residual);
  }
  Tensor y = bn(x);
  if (residual.defined()) y = add(y, residual);
  return relu(y);
}

}  // namespace shrink::nn
