// Integer inference ops: Linear and Conv2d layers whose weights are stored as int8 and whose
// products are summed exactly in 32-bit integers (backend.h Int8Layer states the arithmetic).
// The input is quantized on entry and the output leaves as float — dequantized, optionally
// requantized to an output grid, with a folded batch norm and ReLU — so an int8 layer drops in
// where the fake-quantized float layer was and computes the same values up to float rounding.
// Inference only: no gradient is recorded. CPU kernels only (VNNI where the CPU has it).
#pragma once
#include "framework/core/backend.h"
#include "framework/ops/ops.h"

namespace shrink {

// A per-tensor quantization grid: q = nearbyint(clamp(zero_point + x / scale, qmin, qmax)).
struct QuantGrid {
  float scale = 1.f, zero_point = 0.f, qmin = 0.f, qmax = 255.f;
};

// The integer weights q - z of a float weight [n, ...] under a per-row (or per-tensor) grid:
// scale and zero_point hold n values (or one), q = nearbyint(clamp(z + w / s, qmin, qmax)).
// An error names the row when a zero point is not an integer or q - z does not fit in int8.
Tensor quantize_weight_int8(const Tensor& w, const Tensor& scale, const Tensor& zero_point, float qmin, float qmax);

// A layer from integer weights w_int (I8 [n, k] for Linear; [oc, c, kh, kw] for Conv2d, which is
// reordered to the kernel's channel-fastest order), their per-row scale (F32 [n] or one value),
// the input grid (a byte range: qmax - qmin <= 255, integer zero point inside it) and an
// optional bias. Requantization, a folded batch norm and ReLU are set on the result.
Int8Layer make_int8_layer(const Tensor& w_int, const Tensor& weight_scale, const QuantGrid& input, const Tensor& bias);

// Sets the epilogue's requantization to `out` (quantize then dequantize the float output).
void set_output_grid(Int8Layer& l, const QuantGrid& out);

// Makes a layer hand its output to the next int8 layer as bytes in that layer's input grid `next`
// (a convolution: U8 NHWC [N, OH, OW, oc]; a Linear: U8 [..., n]) instead of floats: no float
// tensor in between, and the next layer skips quantizing it. The bytes are the ones the next
// layer would make of the floats.
void set_next_grid(Int8Layer& l, const QuantGrid& next);

// x F32 [..., k], or U8 [..., k] bytes already in the layer's input grid (what a previous Linear
// with set_next_grid gives) -> F32 [..., n], or U8 [..., n] after set_next_grid.
Tensor int8_linear(const Tensor& x, const Int8Layer& l);
// x F32 [N, C, H, W], or U8 [N, H, W, C] bytes already in the layer's input grid (what a previous
// layer with set_next_grid gives) -> F32 [N, oc, OH, OW], or U8 [N, OH, OW, oc] after
// set_next_grid. groups must be 1; kh, kw are the kernel's size.
Tensor int8_conv2d(const Tensor& x, const Int8Layer& l, int64_t kh, int64_t kw, const Conv2dOptions& o);
// Max pooling of U8 [N, H, W, C] bytes to [N, OH, OW, C] (max_pool2d's geometry); exact on
// quantized values, since quantization never reorders them.
Tensor int8_max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);

}  // namespace shrink
