// Fused optimizer updates on flat parameter tensors, elementwise. CPU reference:
// CpuBackend::sgd_step / adam_step (framework/cpu/cpu_backend.cpp): the same expressions in the
// same order, so under emulation the results are bit-identical and on a device they differ only
// where nvcc contracts a multiply-add into an FMA.
#pragma once
#include <math.h>

#include <cmath>

#include "cuda/launch.h"

namespace shrink::kern {

// d = g + wd * p; with momentum: buf = first ? d : momentum * buf + (1 - dampening) * d,
// d = nesterov ? d + momentum * buf : buf; then p -= lr * d.
SHRINK_GLOBAL void sgd_step_kernel(float* param, const float* grad, float* momentum_buf,
                                   int64_t n, float lr, float momentum, float dampening,
                                   float weight_decay, bool nesterov, bool first_step) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    float d = grad[i] + weight_decay * param[i];
    if (momentum_buf) {
      momentum_buf[i] = first_step ? d : momentum * momentum_buf[i] + (1.f - dampening) * d;
      d = nesterov ? d + momentum * momentum_buf[i] : momentum_buf[i];
    }
    param[i] -= lr * d;
  }
}

// Adam / AdamW (decoupled): step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) are
// per-step scalars computed once on the host, exactly as the CPU computes them.
SHRINK_GLOBAL void adam_step_kernel(float* param, const float* grad, float* m, float* v,
                                    int64_t n, float lr, float beta1, float beta2, float eps,
                                    float weight_decay, bool decoupled, float step_size,
                                    float bc2_sqrt) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    float gi = grad[i];
    if (decoupled)
      param[i] *= 1.f - lr * weight_decay;
    else
      gi += weight_decay * param[i];
    m[i] = beta1 * m[i] + (1.f - beta1) * gi;
    v[i] = beta2 * v[i] + (1.f - beta2) * gi * gi;
    const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
    param[i] -= step_size * m[i] / denom;
  }
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
