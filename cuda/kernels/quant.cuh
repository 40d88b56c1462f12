// Fake quantization with a straight-through gradient: y = (round(clamp(z + x/s)) - z) * s with
// per-tensor or broadcast per-channel scale/zero point. CPU reference: CpuBackend::fake_quant
// and fake_quant_backward (framework/cpu/cpu_quant.cpp); formula in scalar_ops.h.
#pragma once
#include "cuda/kernels/indexing.h"
#include "cuda/launch.h"
#include "framework/core/scalar_ops.h"

namespace shrink::kern {

SHRINK_DEVICE int64_t broadcast_offset(const StridedIndex& s, int64_t i) {
  int64_t ob = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    ob += (i % s.shape[d]) * s.b[d];
    i /= s.shape[d];
  }
  return ob;
}

// Per-tensor scale (the common case) skips the index arithmetic entirely.
SHRINK_GLOBAL void fake_quant_kernel(const float* x, const float* scale, const float* zero,
                                     float* y, int64_t n, StridedIndex s, bool per_tensor,
                                     float qmin, float qmax) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t c = per_tensor ? 0 : broadcast_offset(s, i);
    y[i] = scalar::fake_quant_value(x[i], scale[c], zero[c], qmin, qmax);
  }
}

SHRINK_GLOBAL void fake_quant_backward_kernel(const float* x, const float* scale,
                                              const float* zero, const float* gy, float* gx,
                                              int64_t n, StridedIndex s, bool per_tensor,
                                              float qmin, float qmax, bool clip_grad) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t c = per_tensor ? 0 : broadcast_offset(s, i);
    const float g = gy[i];
    gx[i] = !clip_grad || scalar::fake_quant_in_range(x[i], scale[c], zero[c], qmin, qmax) ? g : 0.f;
  }
}

inline void fake_quant(const float* x, const float* scale, const float* zero, float* y, int64_t n,
                       const StridedIndex& s, bool per_tensor, float qmin, float qmax) {
  if (n > 0)
    SHRINK_LAUNCH(fake_quant_kernel, cuda::blocks_for(n, 256), cuda::threads_1d(256), 0, x, scale,
                  zero, y, n, s, per_tensor, qmin, qmax);
}

inline void fake_quant_backward(const float* x, const float* scale, const float* zero,
                                const float* gy, float* gx, int64_t n, const StridedIndex& s,
                                bool per_tensor, float qmin, float qmax, bool clip_grad) {
  if (n > 0)
    SHRINK_LAUNCH(fake_quant_backward_kernel, cuda::blocks_for(n, 256), cuda::threads_1d(256), 0, x,
                  scale, zero, gy, gx, n, s, per_tensor, qmin, qmax, clip_grad);
}

}  // namespace shrink::kern
