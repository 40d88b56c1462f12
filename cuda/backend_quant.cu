// CudaBackend: the compression kernels (fake quantization with straight-through gradient).
// Masking is the binary kernel with BinaryOp::Mul / MaskAdd (backend_kernels.cu).
#include "cuda/cuda_backend_impl.h"
#include "cuda/kernels/quant.cuh"

namespace shrink::cuda {

void CudaBackend::fake_quant(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                             const Broadcast& bc, float qmin, float qmax, Tensor& y) {
  kern::fake_quant(x.data<float>(), scale.data<float>(), zero_point.data<float>(), y.data<float>(),
                   y.numel(), kern::make_strided(bc.out, bc.a_strides, bc.b_strides),
                   scale.numel() == 1, qmin, qmax);
}

void CudaBackend::fake_quant_backward(const Tensor& x, const Tensor& scale,
                                      const Tensor& zero_point, const Broadcast& bc, float qmin,
                                      float qmax, bool clip_grad, const Tensor& gy, Tensor& gx) {
  kern::fake_quant_backward(x.data<float>(), scale.data<float>(), zero_point.data<float>(),
                            gy.data<float>(), gx.data<float>(), gx.numel(),
                            kern::make_strided(bc.out, bc.a_strides, bc.b_strides),
                            scale.numel() == 1, qmin, qmax, clip_grad);
}

}  // namespace shrink::cuda
