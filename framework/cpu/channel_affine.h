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

// The normalised value, computed here by every kernel.
inline float normalised(float x, ChannelAffine a) { return mul_add(x, a.scale, a.shift); }

// q = relu?(p * scale + shift + r?) over one row; q may be p (in place).
template <bool kResidual, bool kRelu>
void apply_row(const float* p, const float* r, float* q, int64_t n, ChannelAffine a) {
  for (int64_t i = 0; i < n; ++i) {
    float v = normalised(p[i], a);
    if (kResidual) v += r[i];
    q[i] = kRelu ? (v > 0.f ? v : 0.f) : v;  // the relu op's expression (NaN -> 0)
  }
}

using ApplyRow = void (*)(const float*, const float*, float*, int64_t, ChannelAffine);
inline ApplyRow apply_row_for(bool residual, bool relu) {
  return residual ? (relu ? apply_row<true, true> : apply_row<true, false>)
                  : (relu ? apply_row<false, true> : apply_row<false, false>);
}

}  // namespace shrink::cpu
