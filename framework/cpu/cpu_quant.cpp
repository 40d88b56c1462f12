// CPU kernels for fake quantization (the STE op of the quantizers): the reference the CUDA
// kernels in cuda/kernels/quant.cuh are tested against.
#include "framework/core/scalar_ops.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/strided.h"

namespace shrink::cpu {

void CpuBackend::fake_quant(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                            const Broadcast& bc, float qmin, float qmax, Tensor& y) {
  const float* xp = x.data<float>();
  const float* sp = scale.data<float>();
  const float* zp = zero_point.data<float>();
  float* yp = y.data<float>();
  const int64_t sa = bc.a_strides.back(), sb = bc.b_strides.back();
  parallel_runs(bc.out, bc.a_strides, bc.b_strides,
                [&](int64_t o, int64_t ia, int64_t ib, int64_t len) {
                  for (int64_t i = 0; i < len; ++i)
                    yp[o + i] = scalar::fake_quant_value(xp[ia + i * sa], sp[ib + i * sb],
                                                         zp[ib + i * sb], qmin, qmax);
                });
}

void CpuBackend::fake_quant_backward(const Tensor& x, const Tensor& scale,
                                     const Tensor& zero_point, const Broadcast& bc, float qmin,
                                     float qmax, bool clip_grad, const Tensor& gy, Tensor& gx) {
  const float* xp = x.data<float>();
  const float* sp = scale.data<float>();
  const float* zp = zero_point.data<float>();
  const float* gp = gy.data<float>();
  float* op = gx.data<float>();
  const int64_t sa = bc.a_strides.back(), sb = bc.b_strides.back();
  parallel_runs(bc.out, bc.a_strides, bc.b_strides,
                [&](int64_t o, int64_t ia, int64_t ib, int64_t len) {
                  for (int64_t i = 0; i < len; ++i) {
                    const float g = gp[o + i];
                    op[o + i] = !clip_grad || scalar::fake_quant_in_range(
                                                  xp[ia + i * sa], sp[ib + i * sb],
                                                  zp[ib + i * sb], qmin, qmax)
                                    ? g
                                    : 0.f;
                  }
                });
}

}  // namespace shrink::cpu
