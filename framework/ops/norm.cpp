// batch_norm and layer_norm.
#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;
using detail::check_same_device;

detail::NormStatistics detail::evaluation_statistics(const Tensor& running_mean, const Tensor& running_var,
                                                     float eps) {
  NoGradGuard ng;
  return {running_mean.contiguous_copy(), pow(add(running_var, eps), -0.5f)};
}

namespace {
// batch_norm, and with `relu` the fused batch_norm_relu. The backward keeps x, the parameters and
// the residual (not the output): an in-place write into any of them before backward changes the
// gradients, as it would for batch_norm's x and weight.
Tensor batch_norm_with(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       float momentum, float eps, const Tensor& residual, bool relu) {
  const char* op = relu ? "batch_norm_relu" : "batch_norm";
  check_f32(x, op, "input");
  SHRINK_CHECK(x.dim() >= 2, op, ": input must be [N, C, ...], got ", x.shape());
  const int64_t c = x.size(1), outer = x.size(0), inner = x.numel() / std::max<int64_t>(outer * c, 1);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    if (t->defined())
      SHRINK_CHECK(t->dim() == 1 && t->size(0) == c, op, ": parameter ", t->shape(), " for ", c,
                   " channels of input ", x.shape());
  if (residual.defined()) {
    check_f32(residual, op, "residual");
    check_same_device(x, residual, op);
    SHRINK_CHECK(residual.shape() == x.shape(), op, ": residual ", residual.shape(),
                 " must have the input's shape ", x.shape());
  }
  Tensor mean, invstd;
  {
    NoGradGuard ng;
    if (training) {
      SHRINK_CHECK(outer * inner > 1, op, ": training needs more than one value per channel, got input ",
                   x.shape());
      mean = Tensor::empty({c}, DType::F32, x.device());
      Tensor var = Tensor::empty({c}, DType::F32, x.device());
      backend(x.device()).batch_norm_stats(x, outer, c, inner, mean, var);
      invstd = pow(add(var, eps), -0.5f);
      if (running_mean.defined()) {
        const float count = static_cast<float>(outer * inner);
        Tensor rm = running_mean, rv = running_var;
        rm.copy_(add(mul(running_mean, 1.f - momentum), mul(mean, momentum)));
        rv.copy_(add(mul(running_var, 1.f - momentum), mul(var, momentum * count / (count - 1.f))));
      }
    } else {
      SHRINK_CHECK(running_mean.defined() && running_var.defined(), op,
                   ": evaluation needs running statistics");
      const detail::NormStatistics st = detail::evaluation_statistics(running_mean, running_var, eps);
      mean = st.mean;
      invstd = st.invstd;
    }
  }
  const Tensor* w = weight.defined() ? &weight : nullptr;
  const Tensor* b = bias.defined() ? &bias : nullptr;
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  backend(x.device()).batch_norm_apply(x, outer, c, inner, mean, invstd, w, b,
                                       {residual.defined() ? &residual : nullptr, relu}, y);
  if (needs_grad({&x, &weight, &bias, &residual})) {
    // The backward needs the detached operands only: the epilogue's mask is recomputed from them.
    Tensor xd = x.detach(), wd = w ? weight.detach() : Tensor(), bd = b ? bias.detach() : Tensor();
    Tensor rd = residual.defined() ? residual.detach() : Tensor();
    const bool gw = w && weight.requires_grad(), gb = b && bias.requires_grad();
    const bool gr = residual.defined() && residual.requires_grad();
    std::vector<Tensor> inputs{x, weight, bias};
    if (rd.defined()) inputs.push_back(residual);
    record(y, relu ? OpKind::BatchNormRelu : OpKind::BatchNorm, std::move(inputs),
           [xd, wd, bd, rd, mean, invstd, outer, c, inner, training, relu, gw, gb, gr](const Tensor& g) {
             Tensor gx = Tensor::empty(xd.shape(), DType::F32, g.device());
             Tensor gwt = gw ? Tensor::empty({c}, DType::F32, g.device()) : Tensor();
             Tensor gbt = gb ? Tensor::empty({c}, DType::F32, g.device()) : Tensor();
             Tensor grt = gr ? Tensor::empty(xd.shape(), DType::F32, g.device()) : Tensor();
             backend(g.device()).batch_norm_backward(
                 xd, g, outer, c, inner, mean, invstd, wd.defined() ? &wd : nullptr,
                 bd.defined() ? &bd : nullptr, {rd.defined() ? &rd : nullptr, relu}, training, gx,
                 gw ? &gwt : nullptr, gb ? &gbt : nullptr, gr ? &grt : nullptr);
             if (!rd.defined()) return std::vector<Tensor>{gx, gwt, gbt};
             return std::vector<Tensor>{gx, gwt, gbt, grt};
           },
           {training ? 1 : 0});
  }
  return y;
}
}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  float momentum, float eps) {
  return batch_norm_with(x, weight, bias, running_mean, running_var, training, momentum, eps,
                         Tensor(), false);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       float momentum, float eps, const Tensor& residual) {
  return batch_norm_with(x, weight, bias, running_mean, running_var, training, momentum, eps,
                         residual, true);
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, float eps) {
  check_f32(x, "layer_norm", "input");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  SHRINK_CHECK(k >= 1 && k <= x.dim(), "layer_norm: normalized_shape ", normalized_shape,
               " for input ", x.shape());
  for (int64_t i = 0; i < k; ++i)
    SHRINK_CHECK(x.size(x.dim() - k + i) == normalized_shape[i], "layer_norm: normalized_shape ",
                 normalized_shape, " does not match the trailing dims of input ", x.shape());
  for (const Tensor* t : {&weight, &bias})
    if (t->defined())
      SHRINK_CHECK(t->shape() == normalized_shape, "layer_norm: parameter ", t->shape(),
                   " must have shape ", normalized_shape);
  const int64_t n = shape_numel(normalized_shape), rows = x.numel() / std::max<int64_t>(n, 1);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  Tensor mean = Tensor::empty({rows}, DType::F32, x.device());
  Tensor invstd = Tensor::empty({rows}, DType::F32, x.device());
  backend(x.device()).layer_norm_forward(x, rows, n, weight.defined() ? &weight : nullptr,
                                         bias.defined() ? &bias : nullptr, eps, y, mean, invstd);
  if (needs_grad({&x, &weight, &bias})) {
    Tensor xd = x.detach(), wd = weight.defined() ? weight.detach() : Tensor();
    bool gw = weight.defined() && weight.requires_grad();
    bool gb = bias.defined() && bias.requires_grad();
    Shape ns = normalized_shape;
    record(y, OpKind::LayerNorm, {x, weight, bias},
           [xd, wd, mean, invstd, rows, n, gw, gb, ns](const Tensor& g) {
             Tensor gx = Tensor::empty(xd.shape(), DType::F32, g.device());
             Tensor gwt = gw ? Tensor::empty(ns, DType::F32, g.device()) : Tensor();
             Tensor gbt = gb ? Tensor::empty(ns, DType::F32, g.device()) : Tensor();
             backend(g.device()).layer_norm_backward(xd, g, rows, n, mean, invstd,
                                                     wd.defined() ? &wd : nullptr, gx,
                                                     gw ? &gwt : nullptr, gb ? &gbt : nullptr);
             return std::vector<Tensor>{gx, gwt, gbt};
           });
  }
  return y;
}

}  // namespace shrink
