#include "framework/nn/fusion.h"

#include <typeinfo>

#include "framework/core/autograd.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace shrink::nn {

namespace {
thread_local bool fusion_on = true;

// A residual the fused ops take as it is: exactly y's shape, f32, on y's device. Anything else
// (one that add would broadcast, say) runs unfused, where add and the modules give their own
// answers and errors.
bool plain_residual(const Tensor& r, const Shape& shape, Device device) {
  return !r.defined() || (r.shape() == shape && r.dtype() == DType::F32 && r.device() == device);
}

bool needs_grad_now(const Tensor& t) { return GradMode::enabled() && t.defined() && t.requires_grad(); }
}  // namespace

bool fusion_enabled() { return fusion_on; }

FusionGuard::FusionGuard(bool enabled) : prev_(fusion_on) { fusion_on = enabled; }
FusionGuard::~FusionGuard() { fusion_on = prev_; }

bool fuses_batch_norm_relu(const Module& bn, const Module& relu) {
  if (!fusion_on || bn.intercepted() || relu.intercepted() || !is_relu(relu)) return false;
  // Exact types: a subclass may override forward, which the fused op would skip.
  if (typeid(bn) != typeid(BatchNorm2d) && typeid(bn) != typeid(BatchNorm1d)) return false;
  return !static_cast<const BatchNorm&>(bn).has_batch_statistics();
}

Tensor batch_norm_relu(Module& bn, Module& relu, const Tensor& x, const Tensor& residual) {
  if (fuses_batch_norm_relu(bn, relu) && x.dtype() == DType::F32 &&
      plain_residual(residual, x.shape(), x.device())) {
    ModuleScope scope(&bn);  // the fused op's node names the batch norm as its module
    return static_cast<BatchNorm&>(bn).forward_relu(x, residual);
  }
  Tensor y = bn(x);
  if (residual.defined()) y = add(y, residual);
  return relu(y);
}

bool is_relu(const Module& m) { return typeid(m) == typeid(ReLU); }

bool fuses_conv_batch_norm(const Module& conv, const Module& bn, const Module* relu, const Tensor& x) {
  if (!fusion_on || typeid(conv) != typeid(Conv2d) || typeid(bn) != typeid(BatchNorm2d)) return false;
  if (conv.intercepted() || bn.intercepted() || bn.is_training()) return false;
  if (relu && (relu->intercepted() || !is_relu(*relu))) return false;
  // Operands the modules would accept (shapes as the tensors have them); the rest runs unfused,
  // for the modules' own errors.
  const Tensor w = conv.param("weight"), mean = bn.param("running_mean");
  if (!mean.defined()) return false;  // evaluation on batch statistics
  if (x.dtype() != DType::F32 || x.dim() != 4 || !w.defined() || w.dim() != 4 ||
      x.size(1) != w.size(1) * static_cast<const Conv2d&>(conv).groups || mean.numel() != w.size(0))
    return false;
  if (!GradMode::enabled()) return true;
  if (x.requires_grad()) return false;
  for (const Module* m : {&conv, &bn})
    for (const auto& [name, p] : m->local_parameters())
      if (p.defined() && p.requires_grad()) return false;
  return true;
}

Tensor conv_batch_norm_relu(Module& conv, Module& bn, Module* relu, const Tensor& x,
                            const std::function<Tensor()>& residual) {
  // The ReLU joins the fold when it can; an intercepted one runs as its module afterwards.
  Module* folded_relu = relu && fuses_conv_batch_norm(conv, bn, relu, x) ? relu : nullptr;
  if (folded_relu || fuses_conv_batch_norm(conv, bn, nullptr, x)) {
    // conv and bn are unobserved, so the residual's modules may run first.
    const Tensor r = residual ? residual() : Tensor();
    const auto& c = static_cast<const Conv2d&>(conv);
    const auto& b = static_cast<const BatchNorm&>(bn);
    const Tensor w = c.param("weight");
    Tensor z;
    if (!needs_grad_now(r) && plain_residual(r, conv2d_output_shape(x.shape(), w.shape(), c.options()), x.device())) {
      z = conv2d_batch_norm(x, w, c.param("bias"), c.options(), b.param("weight"), b.param("bias"),
                            b.param("running_mean"), b.param("running_var"), b.eps, folded_relu != nullptr, r);
      return relu && !folded_relu ? (*relu)(z) : z;
    }
    z = bn(conv(x));  // a residual to differentiate or to broadcast: the modules one by one
    if (r.defined()) z = add(z, r);
    return relu ? (*relu)(z) : z;
  }
  const Tensor y = conv(x);
  if (relu && fuses_batch_norm_relu(bn, *relu))
    return batch_norm_relu(bn, *relu, y, residual ? residual() : Tensor());
  Tensor z = bn(y);
  if (residual) z = add(z, residual());
  return relu ? (*relu)(z) : z;
}

}  // namespace shrink::nn
