// The CUDA implementation of the framework's kernel interface (framework/core/backend.h):
// own kernels (cuda/kernels/) for elementwise work, reductions, normalisation, pooling, losses,
// selection and optimizer updates; cuBLAS for GEMM; cuDNN for convolution. All work is queued
// on one stream; host copies synchronise.
#pragma once
#include "framework/core/backend.h"
#include "framework/core/backend_overrides.h"

namespace shrink::cuda {

class CudaBackend final : public Backend {
 public:
  CudaBackend() = default;
  Device device() const override { return Device::CUDA; }
  void synchronize() override;
  SHRINK_BACKEND_KERNEL_OVERRIDES
};

}  // namespace shrink::cuda
