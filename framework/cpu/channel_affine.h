// A batch norm's normalisation of one channel as the affine map y = x * scale + shift, with the
// fused epilogue's residual and ReLU (BatchNormEpilogue). The batch norm kernels and the
// convolution's folded inference epilogue (conv2d_batch_norm) both take it from here, so every
// path rounds exactly as batch_norm followed by add and relu.
#pragma once
#include <cmath>
#include <cstdint>

namespace shrink::cpu {

struct ChannelAffine {
  float scale, shift;
};

// a * b + c with the rounding spelled out: one FMA where the build targets FMA hardware (GCC
// would contract it there anyway, expression by expression), two roundings elsewhere. Forward
// and backward kernels that must agree bit for bit compute through it.
inline float mul_add(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

inline ChannelAffine channel_affine(int64_t ch, const float* mean, const float* invstd,
                                    const float* weight, const float* bias) {
  const float scale = invstd[ch] * (weight ? weight[ch] : 1.f);
  return {scale, mul_add(-mean[ch], scale, bias ? bias[ch] : 0.f)};
}

// The value before the ReLU, element i of a row: normalised, plus the residual when there is
// one. The forward and the backward's recomputed ReLU mask both take it from here.
template <bool kResidual>
inline float pre_activation(const float* p, const float* r, int64_t i, ChannelAffine a) {
  const float v = mul_add(p[i], a.scale, a.shift);
  return kResidual ? v + r[i] : v;
}

// q = relu?(p * scale + shift + r?) over one row; q may be p (in place).
template <bool kResidual, bool kRelu>
void apply_row(const float* p, const float* r, float* q, int64_t n, ChannelAffine a) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = pre_activation<kResidual>(p, r, i, a);
    q[i] = kRelu ? (v > 0.f ? v : 0.f) : v;  // the relu op's expression (NaN -> 0)
  }
}

using ApplyRow = void (*)(const float*, const float*, float*, int64_t, ChannelAffine);
inline ApplyRow apply_row_for(bool residual, bool relu) {
  return residual ? (relu ? apply_row<true, true> : apply_row<true, false>)
                  : (relu ? apply_row<false, true> : apply_row<false, false>);
}

}  // namespace shrink::cpu
