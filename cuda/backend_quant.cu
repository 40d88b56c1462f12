// CudaBackend: the compression kernels (straight-through fake quantization, every QuantMethod).
// Masking is the binary kernel with BinaryOp::Mul / MaskAdd (backend_kernels.cu).
#include "cuda/cuda_backend_impl.h"
#include "cuda/kernels/quant.cuh"

namespace shrink::cuda {

bool CudaBackend::fake_quant(const QuantArgs& q, const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                             const Broadcast& bc, Tensor& y) {
  kern::fake_quant(q, x.data<float>(), scale.data<float>(), zero_point.data<float>(), y.data<float>(), y.numel(),
                   kern::make_strided(bc.out, bc.a_strides, bc.b_strides), scale.numel() == 1);
  return true;  // knowing would need a device-to-host read per call; the backward always runs
}

void CudaBackend::fake_quant_backward(const QuantArgs& q, const Tensor& x, const Tensor& scale,
                                      const Tensor& zero_point, const Broadcast& bc, const Tensor& gy, Tensor& gx,
                                      Tensor* gscale, Tensor* gzero) {
  kern::fake_quant_backward(q, x.data<float>(), scale.data<float>(), zero_point.data<float>(), gy.data<float>(),
                            gx.data<float>(), gscale ? gscale->data<float>() : nullptr,
                            gzero ? gzero->data<float>() : nullptr, gx.numel(),
                            kern::make_strided(bc.out, bc.a_strides, bc.b_strides), scale.numel() == 1);
}

}  // namespace shrink::cuda
