// Direct convolution for CPUs with AVX-512: an implicit GEMM over an NHWC copy of each image,
// computed by register-blocked micro-kernels. It replaces im2col + OpenBLAS where it applies
// (groups 1, dilation 1, at least 3 input channels; any stride and padding): no k*k-times column
// matrix, no GEMM packing, one transpose into NHWC and one back per image. Everything else, and
// every CPU without AVX-512F, takes the im2col path in cpu_gemm_conv.cpp, which stays the
// reference.
#pragma once
#include <functional>

#include "framework/core/backend.h"

namespace shrink::cpu::direct_conv {

// Whether the direct kernels run for these parameters on this CPU (and are enabled): the
// forward pass and the weight gradient (3 input channels or more); the input gradient only from
// 5 input channels.
bool handles(const Conv2dParams& p);
bool handles_input_grad(const Conv2dParams& p);

// NCHW in, NCHW out, like the Backend methods they serve.
// after_image(n), when given, runs on the thread that wrote image n of y, right after it, while
// the image is still in cache (the folded batch norm of conv2d_batch_norm_forward).
void forward(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y,
             const std::function<void(int64_t n)>& after_image = nullptr);
void backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx);
void backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw);
// Either or both gradients (null to skip), with one NHWC copy
// of each image of gy serving both.
void backward(const Conv2dParams& p, const float* gy, const float* x, const float* w, float* gx,
              float* gw);

// On by default; SHRINK_CONV=im2col in the environment turns it off. Tests switch it to compare
// both paths on the same inputs.
bool enabled();
void set_enabled(bool on);
// Whether this CPU can run the direct kernels at all.
bool available();

}  // namespace shrink::cpu::direct_conv
