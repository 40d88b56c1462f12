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

bool fuses_conv_batch_norm(const Module& conv, const Module& bn, const Module* relu, const Tensor& x) {
  if (!fusion_on || typeid(conv) != typeid(Conv2d) || typeid(bn) != typeid(BatchNorm2d)) return false;
  if (conv.intercepted() || bn.intercepted() || bn.is_training()) return false;
  if (relu && (relu->intercepted() || typeid(*relu) != typeid(ReLU))) return false;
  if (!bn.param("running_mean").defined()) return false;  // evaluation on batch statistics
  if (!GradMode::enabled()) return true;
  if (x.requires_grad()) return false;
  for (const Module* m : {&conv, &bn})
    for (const auto& [name, p] : m->local_parameters())
      if (p.defined() && p.requires_grad()) return false;
  return true;
}

Tensor conv_batch_norm_relu(Module& conv, Module& bn, Module* relu, const Tensor& x,
                            const std::function<Tensor()>& residual) {
  if (fuses_conv_batch_norm(conv, bn, relu, x)) {
    const Tensor r = residual ? residual() : Tensor();
    if (!(GradMode::enabled() && r.defined() && r.requires_grad())) {
      const auto& c = static_cast<const Conv2d&>(conv);
      const auto& b = static_cast<const BatchNorm&>(bn);
      return conv2d_batch_norm(x, c.param("weight"), c.param("bias"), c.options(), b.param("weight"),
                               b.param("bias"), b.param("running_mean"), b.param("running_var"), b.eps,
                               relu != nullptr, r);
    }
    // A residual that needs a gradient: the modules one by one (conv is unobserved, so running
    // it after the residual's modules changes nothing anyone can see).
    return relu ? batch_norm_relu(bn, *relu, conv(x), r) : add(bn(conv(x)), r);
  }
  const Tensor y = conv(x);
  if (relu && fuses_batch_norm_relu(bn, *relu)) return batch_norm_relu(bn, *relu, y, residual ? residual() : Tensor());
  Tensor z = bn(y);
  if (residual) z = add(z, residual());
  return relu ? (*relu)(z) : z;
}

}  // namespace shrink::nn
