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
  void conv2d_batch_norm_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                 const Tensor* bias, const Tensor& mean, const Tensor& invstd,
                                 const Tensor* bn_weight, const Tensor* bn_bias,
                                 const BatchNormEpilogue& epilogue, Tensor& y) override;
  // Integer inference (cpu_int8.cpp).
  Tensor int8_pack(const Tensor& w) override;
  void int8_linear(const Int8Layer& l, const Tensor& x, Tensor& y) override;
  void int8_conv2d(const Conv2dParams& p, const Int8Layer& l, const Tensor& x, Tensor& y) override;
  void int8_max_pool2d(const Pool2dParams& p, const Tensor& x, Tensor& y) override;
};

}  // namespace shrink::cpu
