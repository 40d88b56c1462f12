// Fused optimizer updates on flat parameter tensors, elementwise. CPU reference:
// CpuBackend::sgd_step / adam_step (framework/cpu/cpu_backend.cpp): both call the formulas of
// framework/core/scalar_ops.h, so under emulation the results are bit-identical and on a device they differ only
// where nvcc contracts a multiply-add into an FMA.
#pragma once
#include <math.h>

#include <cmath>

#include "cuda/launch.h"
#include "framework/core/scalar_ops.h"

namespace shrink::kern {

SHRINK_GLOBAL void sgd_step_kernel(float* param, const float* grad, float* momentum_buf,
                                   int64_t n, float lr, float momentum, float dampening,
                                   float weight_decay, bool nesterov, bool first_step) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    scalar::sgd_update(param[i], grad[i], momentum_buf ? momentum_buf + i : nullptr, lr, momentum,
                       dampening, weight_decay, nesterov, first_step);
}

SHRINK_GLOBAL void adam_step_kernel(float* param, const float* grad, float* m, float* v,
                                    int64_t n, float lr, float beta1, float beta2, float eps,
                                    float weight_decay, bool decoupled, float step_size,
                                    float bc2_sqrt) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    scalar::adam_update(param[i], grad[i], m[i], v[i], lr, beta1, beta2, eps, weight_decay,
                        decoupled, step_size, bc2_sqrt);
}

// ---- host launchers ----
constexpr unsigned kOptimThreads = 256;

// momentum_buf may be null (plain SGD).
inline void sgd_step(float* param, const float* grad, float* momentum_buf, int64_t n, float lr,
                     float momentum, float dampening, float weight_decay, bool nesterov,
                     bool first_step) {
  if (n == 0) return;
  SHRINK_LAUNCH(sgd_step_kernel, cuda::blocks_for(n, kOptimThreads),
                cuda::threads_1d(kOptimThreads), 0, param, grad, momentum_buf, n, lr, momentum,
                dampening, weight_decay, nesterov, first_step);
}

inline void adam_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                      int64_t step) {
  if (n == 0) return;
  const float bc1 = 1.f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.f - std::pow(beta2, static_cast<float>(step));
  const float step_size = lr / bc1;
  const float bc2_sqrt = std::sqrt(bc2);
  SHRINK_LAUNCH(adam_step_kernel, cuda::blocks_for(n, kOptimThreads),
                cuda::threads_1d(kOptimThreads), 0, param, grad, m, v, n, lr, beta1, beta2, eps,
                weight_decay, decoupled, step_size, bc2_sqrt);
}

}  // namespace shrink::kern
