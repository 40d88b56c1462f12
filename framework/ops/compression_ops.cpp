// The ops compressors are built from: masking and fake quantization with a straight-through
// gradient. Kernels: the backend's binary kernel (Mul / MaskAdd) and fake_quant (every QuantMethod).
#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;

Tensor apply_mask(const Tensor& x, const Tensor& mask, MaskMethod method) {
  check_f32(x, "apply_mask", "input");
  check_f32(mask, "apply_mask", "mask");
  detail::check_same_device(x, mask, "apply_mask");
  SHRINK_CHECK(broadcast_shapes(x.shape(), mask.shape(), "apply_mask") == x.shape(),
               "apply_mask: mask ", mask.shape(), " does not broadcast to input ", x.shape());
  const BinaryOp op = method == MaskMethod::Mul ? BinaryOp::Mul : BinaryOp::MaskAdd;
  Broadcast bc = make_broadcast(x.shape(), mask.shape(), "apply_mask");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() > 0) backend(x.device()).binary(op, x, mask, bc, y);
  if (needs_grad({&x})) {
    Tensor m = mask.detach();
    record(y, OpKind::Mask, {x}, [m, method](const Tensor& g) {
      // mul: d/dx (x * m) = m; add: the added constant has no gradient.
      return std::vector<Tensor>{method == MaskMethod::Mul ? mul(g, m) : g};
    }, {static_cast<int64_t>(method)});
  }
  return y;
}

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point, const QuantArgs& q) {
  check_f32(x, "fake_quantize", "input");
  check_f32(scale, "fake_quantize", "scale");
  check_f32(zero_point, "fake_quantize", "zero_point");
  SHRINK_CHECK(scale.shape() == zero_point.shape(), "fake_quantize: scale ", scale.shape(),
               " and zero_point ", zero_point.shape(), " must have the same shape");
  SHRINK_CHECK(broadcast_shapes(x.shape(), scale.shape(), "fake_quantize") == x.shape(),
               "fake_quantize: scale ", scale.shape(), " does not broadcast to input ", x.shape());
  SHRINK_CHECK(q.qmin <= q.qmax, "fake_quantize: qmin ", q.qmin, " > qmax ", q.qmax);
  detail::check_same_device(x, scale, "fake_quantize");
  detail::check_same_device(x, zero_point, "fake_quantize");
  Broadcast bc = make_broadcast(x.shape(), scale.shape(), "fake_quantize");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  const bool masked = y.numel() > 0 && backend(x.device()).fake_quant(q, x, scale, zero_point, bc, y);
  if (needs_grad({&x, &scale, &zero_point})) {
    // Only the learned-step methods differentiate the scale (and LSQ+ the zero point).
    const bool want_s = scale.requires_grad() && (q.method == QuantMethod::Lsq || q.method == QuantMethod::LsqPlus);
    const bool want_z = zero_point.requires_grad() && q.method == QuantMethod::LsqPlus;
    if (!masked && !want_s && !want_z) {  // the straight-through gradient is g itself: no pass
      record(y, OpKind::FakeQuant, {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; },
             {static_cast<int64_t>(q.method)});
      return y;
    }
    Tensor xd = x.detach(), sd = scale.detach(), zd = zero_point.detach();
    record(y, OpKind::FakeQuant, {x, scale, zero_point}, [xd, sd, zd, bc, q, want_s, want_z](const Tensor& g) {
      Tensor gx = Tensor::empty(g.shape(), DType::F32, g.device());
      Tensor gs = want_s ? Tensor::empty(g.shape(), DType::F32, g.device()) : Tensor();
      Tensor gz = want_z ? Tensor::empty(g.shape(), DType::F32, g.device()) : Tensor();
      if (gx.numel() > 0)
        backend(g.device()).fake_quant_backward(q, xd, sd, zd, bc, g, gx, want_s ? &gs : nullptr,
                                                want_z ? &gz : nullptr);
      return std::vector<Tensor>{gx, want_s ? sum_to_shape(gs, sd.shape()) : Tensor(),
                                 want_z ? sum_to_shape(gz, zd.shape()) : Tensor()};
    }, {static_cast<int64_t>(q.method)});
  }
  return y;
}

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point, float qmin,
                     float qmax, bool clip_grad) {
  QuantArgs q;
  q.method = clip_grad ? QuantMethod::QatClampRound : QuantMethod::ClampRound;
  q.qmin = qmin;
  q.qmax = qmax;
  return fake_quantize(x, scale, zero_point, q);
}

}  // namespace shrink
