// The ops compressors are built from: masking and fake quantization with a straight-through
// gradient. Kernels: the backend's binary kernel (Mul / MaskAdd) and fake_quant.
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

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point, float qmin,
                     float qmax, bool clip_grad) {
  check_f32(x, "fake_quantize", "input");
  check_f32(scale, "fake_quantize", "scale");
  check_f32(zero_point, "fake_quantize", "zero_point");
  SHRINK_CHECK(scale.shape() == zero_point.shape(), "fake_quantize: scale ", scale.shape(),
               " and zero_point ", zero_point.shape(), " must have the same shape");
  SHRINK_CHECK(broadcast_shapes(x.shape(), scale.shape(), "fake_quantize") == x.shape(),
               "fake_quantize: scale ", scale.shape(), " does not broadcast to input ", x.shape());
  SHRINK_CHECK(qmin <= qmax, "fake_quantize: qmin ", qmin, " > qmax ", qmax);
  detail::check_same_device(x, scale, "fake_quantize");
  Broadcast bc = make_broadcast(x.shape(), scale.shape(), "fake_quantize");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() > 0) backend(x.device()).fake_quant(x, scale, zero_point, bc, qmin, qmax, y);
  if (needs_grad({&x})) {
    Tensor xd = x.detach(), sd = scale.detach(), zd = zero_point.detach();
    record(y, OpKind::FakeQuant, {x}, [xd, sd, zd, bc, qmin, qmax, clip_grad](const Tensor& g) {
      Tensor gx = Tensor::empty(g.shape(), DType::F32, g.device());
      if (gx.numel() > 0)
        backend(g.device()).fake_quant_backward(xd, sd, zd, bc, qmin, qmax, clip_grad, g, gx);
      return std::vector<Tensor>{gx};
    }, {clip_grad ? 1 : 0});
  }
  return y;
}

}  // namespace shrink
