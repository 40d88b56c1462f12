// conv2d and 2-d pooling ops (NCHW).
#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;

Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dOptions& o) {
  return {x[0], weight[0], (x[2] + 2 * o.pad_h - o.dil_h * (weight[2] - 1) - 1) / o.stride_h + 1,
          (x[3] + 2 * o.pad_w - o.dil_w * (weight[3] - 1) - 1) / o.stride_w + 1};
}

namespace {
// Checks the operands of a convolution named `op` and derives its parameters.
Conv2dParams conv_params(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Conv2dOptions& o, const char* op) {
  check_f32(x, op, "input");
  check_f32(weight, op, "weight");
  SHRINK_CHECK(x.dim() == 4, op, ": input must be [N, C, H, W], got ", x.shape());
  SHRINK_CHECK(weight.dim() == 4, op, ": weight must be [OC, C/groups, KH, KW], got ",
               weight.shape());
  SHRINK_CHECK(o.groups >= 1 && x.size(1) % o.groups == 0 && weight.size(0) % o.groups == 0,
               op, ": groups ", o.groups, " must divide input channels ", x.size(1),
               " and output channels ", weight.size(0));
  SHRINK_CHECK(weight.size(1) * o.groups == x.size(1), op, ": weight ", weight.shape(),
               " with groups ", o.groups, " does not match input ", x.shape());
  SHRINK_CHECK(o.stride_h > 0 && o.stride_w > 0 && o.dil_h > 0 && o.dil_w > 0 && o.pad_h >= 0 &&
                   o.pad_w >= 0,
               op, ": stride and dilation must be positive and padding non-negative");
  Conv2dParams p{};
  p.n = x.size(0); p.c = x.size(1); p.h = x.size(2); p.w = x.size(3);
  p.oc = weight.size(0); p.kh = weight.size(2); p.kw = weight.size(3);
  p.stride_h = o.stride_h; p.stride_w = o.stride_w; p.pad_h = o.pad_h; p.pad_w = o.pad_w;
  p.dil_h = o.dil_h; p.dil_w = o.dil_w; p.groups = o.groups;
  const Shape out = conv2d_output_shape(x.shape(), weight.shape(), o);
  p.oh = out[2];
  p.ow = out[3];
  SHRINK_CHECK(p.oh > 0 && p.ow > 0, op, ": input ", x.shape(), " is smaller than kernel ",
               weight.shape(), " (after padding)");
  if (bias.defined()) {
    check_f32(bias, op, "bias");
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == p.oc, op, ": bias ", bias.shape(),
                 " for ", p.oc, " output channels");
  }
  return p;
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& o) {
  const Conv2dParams p = conv_params(x, weight, bias, o, "conv2d");
  Tensor y = Tensor::empty({p.n, p.oc, p.oh, p.ow}, DType::F32, x.device());
  backend(x.device()).conv2d_forward(p, x, weight, bias.defined() ? &bias : nullptr, y);
  if (needs_grad({&x, &weight, &bias})) {
    Tensor xd = x.detach(), wd = weight.detach();
    bool gx = x.requires_grad(), gw = weight.requires_grad();
    bool has_bias = bias.defined(), gb = has_bias && bias.requires_grad();
    std::vector<Tensor> inputs{x, weight};
    if (has_bias) inputs.push_back(bias);
    record(y, OpKind::Conv2d, std::move(inputs),
           [p, xd, wd, gx, gw, gb, has_bias](const Tensor& g) {
             std::vector<Tensor> r(has_bias ? 3 : 2);
             Backend& be = backend(g.device());
             if (gx) r[0] = Tensor::empty(xd.shape(), DType::F32, g.device());
             if (gw) r[1] = Tensor::empty(wd.shape(), DType::F32, g.device());
             if (gx || gw) be.conv2d_backward(p, g, xd, wd, gx ? &r[0] : nullptr, gw ? &r[1] : nullptr);
             if (gb) r[2] = sum(g, {0, 2, 3});
             return r;
           },
           {p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups});
  }
  return y;
}

Tensor conv2d_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Conv2dOptions& o, const Tensor& bn_weight, const Tensor& bn_bias,
                         const Tensor& running_mean, const Tensor& running_var, float eps, bool relu,
                         const Tensor& residual) {
  const char* op = "conv2d_batch_norm";
  const Conv2dParams p = conv_params(x, weight, bias, o, op);
  SHRINK_CHECK(!needs_grad({&x, &weight, &bias, &bn_weight, &bn_bias, &residual}), op,
               ": inference only, but an operand requires grad (use conv2d and batch_norm)");
  SHRINK_CHECK(running_mean.defined() && running_var.defined(), op, ": needs running statistics");
  for (const Tensor* t : {&bn_weight, &bn_bias, &running_mean, &running_var})
    if (t->defined()) {
      check_f32(*t, op, "batch norm parameter");
      SHRINK_CHECK(t->dim() == 1 && t->size(0) == p.oc, op, ": batch norm parameter ", t->shape(),
                   " for ", p.oc, " output channels");
    }
  const Shape out{p.n, p.oc, p.oh, p.ow};
  if (residual.defined()) {
    check_f32(residual, op, "residual");
    detail::check_same_device(x, residual, op);
    SHRINK_CHECK(residual.shape() == out, op, ": residual ", residual.shape(), " must have the output's shape ", out);
  }
  const detail::NormStatistics st = detail::evaluation_statistics(running_mean, running_var, eps);
  Tensor y = Tensor::empty(out, DType::F32, x.device());
  backend(x.device()).conv2d_batch_norm_forward(
      p, x, weight, bias.defined() ? &bias : nullptr, st.mean, st.invstd,
      bn_weight.defined() ? &bn_weight : nullptr,
      bn_bias.defined() ? &bn_bias : nullptr, {residual.defined() ? &residual : nullptr, relu}, y);
  return y;
}

namespace {
Pool2dParams pool_params(const Tensor& x, int64_t k, int64_t s, int64_t pad, const char* op) {
  check_f32(x, op, "input");
  SHRINK_CHECK(x.dim() == 4, op, ": input must be [N, C, H, W], got ", x.shape());
  SHRINK_CHECK(k > 0 && s > 0 && pad >= 0, op, ": kernel ", k, ", stride ", s, ", padding ",
               pad, " invalid");
  SHRINK_CHECK(2 * pad <= k, op, ": padding ", pad, " must be at most half the kernel ", k);
  Pool2dParams p{};
  p.n = x.size(0); p.c = x.size(1); p.h = x.size(2); p.w = x.size(3);
  p.kh = p.kw = k; p.stride_h = p.stride_w = s; p.pad_h = p.pad_w = pad;
  p.oh = (p.h + 2 * pad - k) / s + 1;
  p.ow = (p.w + 2 * pad - k) / s + 1;
  SHRINK_CHECK(p.oh > 0 && p.ow > 0, op, ": input ", x.shape(), " smaller than kernel ", k);
  return p;
}
}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  Pool2dParams p = pool_params(x, kernel, stride, padding, "max_pool2d");
  Tensor y = Tensor::empty({p.n, p.c, p.oh, p.ow}, DType::F32, x.device());
  Tensor idx = Tensor::empty({p.n, p.c, p.oh, p.ow}, DType::I64, x.device());
  backend(x.device()).max_pool2d_forward(p, x, y, idx);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(y, OpKind::MaxPool2d, {x}, [p, idx, xs](const Tensor& g) {
      Tensor gx = Tensor::empty(xs, DType::F32, g.device());
      backend(g.device()).max_pool2d_backward(p, g, idx, gx);
      return std::vector<Tensor>{gx};
    }, {kernel, stride, padding});
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                  bool count_include_pad) {
  Pool2dParams p = pool_params(x, kernel, stride, padding, "avg_pool2d");
  p.count_include_pad = count_include_pad;
  Tensor y = Tensor::empty({p.n, p.c, p.oh, p.ow}, DType::F32, x.device());
  backend(x.device()).avg_pool2d_forward(p, x, y);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(y, OpKind::AvgPool2d, {x}, [p, xs](const Tensor& g) {
      Tensor gx = Tensor::empty(xs, DType::F32, g.device());
      backend(g.device()).avg_pool2d_backward(p, g, gx);
      return std::vector<Tensor>{gx};
    }, {kernel, stride, padding});
  }
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_f32(x, "adaptive_avg_pool2d", "input");
  SHRINK_CHECK(x.dim() == 4, "adaptive_avg_pool2d: input must be [N, C, H, W], got ", x.shape());
  SHRINK_CHECK(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size ", out_h, "x", out_w,
               " must be positive");
  Pool2dParams p{};
  p.n = x.size(0); p.c = x.size(1); p.h = x.size(2); p.w = x.size(3);
  p.oh = out_h; p.ow = out_w;
  Tensor y = Tensor::empty({p.n, p.c, p.oh, p.ow}, DType::F32, x.device());
  backend(x.device()).adaptive_avg_pool2d_forward(p, x, y);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(y, OpKind::AdaptiveAvgPool2d, {x}, [p, xs](const Tensor& g) {
      Tensor gx = Tensor::empty(xs, DType::F32, g.device());
      backend(g.device()).adaptive_avg_pool2d_backward(p, g, gx);
      return std::vector<Tensor>{gx};
    }, {out_h, out_w});
  }
  return y;
}

}  // namespace shrink
