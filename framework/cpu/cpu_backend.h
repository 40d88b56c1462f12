// The CPU implementation of the kernel interface. Plain loops (parallel over large ranges with
// static chunks for reproducibility), OpenBLAS sgemm, im2col convolution.
#pragma once
#include "framework/core/backend.h"
#include "framework/core/backend_overrides.h"

namespace shrink::cpu {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  Device device() const override { return Device::CPU; }
  SHRINK_BACKEND_KERNEL_OVERRIDES
  void conv2d_backward(const Conv2dParams& p, const Tensor& gy, const Tensor& x, const Tensor& w,
                       Tensor* gx, Tensor* gw) override;
};

}  // namespace shrink::cpu
