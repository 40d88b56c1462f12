// Straight-through fake quantization (every QuantMethod: clamp_round, qat_clamp_round, LSQ, LSQ+,
// DoReFa output, BNN) with per-tensor or broadcast per-channel scale/zero point. CPU reference:
// CpuBackend::fake_quant and fake_quant_backward (framework/cpu/cpu_quant.cpp); the formulas are
// shared (scalar_ops.h quant_value / quant_grad).
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

// Per-tensor scale (the common case) skips the index arithmetic entirely. The method is uniform
// across the grid, so its switch never diverges.
SHRINK_GLOBAL void fake_quant_kernel(QuantArgs q, const float* x, const float* scale, const float* zero,
                                     float* y, int64_t n, StridedIndex s, bool per_tensor) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t c = per_tensor ? 0 : broadcast_offset(s, i);
    y[i] = scalar::quant_value(q.method, x[i], scale[c], zero[c], q.qmin, q.qmax);
  }
}

// gs / gz (may be null): each element's share of the scale / zero-point gradient, summed by the
// op afterwards (no atomics, so the sum order is the CPU's).
SHRINK_GLOBAL void fake_quant_backward_kernel(QuantArgs q, const float* x, const float* scale,
                                              const float* zero, const float* gy, float* gx, float* gs,
                                              float* gz, int64_t n, StridedIndex s, bool per_tensor) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t c = per_tensor ? 0 : broadcast_offset(s, i);
    float es, ez;
    scalar::quant_grad(q.method, x[i], scale[c], zero[c], q.qmin, q.qmax, q.grad_scale, gy[i], gx[i], es, ez);
    if (gs) gs[i] = es;
    if (gz) gz[i] = ez;
  }
}

inline void fake_quant(const QuantArgs& q, const float* x, const float* scale, const float* zero, float* y,
                       int64_t n, const StridedIndex& s, bool per_tensor) {
  if (n > 0)
    SHRINK_LAUNCH(fake_quant_kernel, cuda::blocks_for(n, 256), cuda::threads_1d(256), 0, q, x, scale, zero, y,
                  n, s, per_tensor);
}

inline void fake_quant_backward(const QuantArgs& q, const float* x, const float* scale, const float* zero,
                                const float* gy, float* gx, float* gs, float* gz, int64_t n,
                                const StridedIndex& s, bool per_tensor) {
  if (n > 0)
    SHRINK_LAUNCH(fake_quant_backward_kernel, cuda::blocks_for(n, 256), cuda::threads_1d(256), 0, q, x, scale,
                  zero, gy, gx, gs, gz, n, s, per_tensor);
}

}  // namespace shrink::kern
