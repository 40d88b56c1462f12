// Direct AVX-512 convolution (see conv_direct.h).
//
// Every pass is the same implicit GEMM over one image stored NHWC with zero borders:
//   out[oi][oj][o] = sum over taps (ki, kj) and channels c of
//                    in[(oi*sh + ki) * wp + oj*sw + kj][c] * w[ki][kj][c][o]
// A micro-kernel keeps MR output pixels of one output row (two rows of 7 for 7-wide outputs)
// times 16 or 32 output channels in zmm registers for the whole reduction: per (kj, c) it loads 1-2 weight vectors and
// broadcasts one input value per pixel, so weights and the image come from cache once per tile.
//   forward:          in = x,                    w = weight as [tap][c][oc]
//   input gradient:   in = gy with zero margins, w = weight rotated 180 degrees, as [tap][oc][c]
//                     (the transposed convolution; with stride s, one such pass per phase of
//                     gx pixels, each with the sub-kernel of the taps that reach it)
//   weight gradient:  a second micro-kernel reduces over output pixels instead, keeping MR
//                     (kj, c) pairs of one kernel row times 16-32 output channels in registers.
// Channel counts are padded to 16 in the packed weights and the NHWC outputs only (and in gy
// when the weight gradient reads its channels as vectors).
// Results differ from the im2col path by rounding only (another summation order); for a given
// thread count they are bitwise reproducible, like every CPU kernel.
#include "framework/cpu/conv_direct.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/cpu/scratch.h"
#include "framework/cpu/transpose.h"
#include "framework/cpu/wgrad_split.h"

#define SHRINK_AVX512 __attribute__((target("avx512f,fma")))

namespace shrink::cpu::direct_conv {

namespace {

constexpr int64_t kLanes = 16;
// Register budget (32 zmm): MR*NV accumulators + NV weight vectors + one broadcast.
constexpr int kMaxRows1 = 28;  // NV = 1
constexpr int kMaxRows2 = 14;  // NV = 2

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{[] {
    const char* env = std::getenv("SHRINK_CONV");
    return !(env && std::strcmp(env, "im2col") == 0);
  }()};
  return flag;
}

// ---- micro-kernels ------------------------------------------------------------------------

// MR pixels (pix_step floats apart in `in`, out_step apart in `out`) x NV*16 channels. The
// reduction runs over kernel rows ki (in + ki*row_step, w + ki*run*ocp); within one, the
// kw*cin values (kj, c) are contiguous in the NHWC image, and so are their weight rows.
// PS > 0: pix_step is PS (the caller checked), so each pixel's input is an immediate offset from
// one pointer; at run time GCC keeps a pointer per pixel, which for 28 pixels spill and cost a
// reload before every FMA. ROWS = 2: the MR pixels are two output rows of MR / 2 (inputs in_row
// apart, outputs out_row apart), so that a 7-pixel row still gives each weight load 14 pixels.
template <int MR, int NV, int PS = 0, int ROWS = 1>
SHRINK_AVX512 void conv_tile(const float* in, int64_t pix_step_arg, int64_t row_step, int64_t kh,
                             int64_t run, const float* w, int64_t ocp, float* out,
                             int64_t out_step, int64_t in_row, int64_t out_row) {
  constexpr int W = MR / ROWS;
  const int64_t pix_step = PS > 0 ? PS : pix_step_arg;
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t ki = 0; ki < kh; ++ki) {
    const float* a = in + ki * row_step;
    const float* b = w + ki * run * ocp;
    for (int64_t k = 0; k < run; ++k, b += ocp) {
      __m512 bv[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + kLanes * v);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const __m512 av = _mm512_set1_ps(a[(r / W) * in_row + (r % W) * pix_step + k]);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(out + (r / W) * out_row + (r % W) * out_step + kLanes * v, acc[r][v]);
}

// MR consecutive values of a kernel row's (kj, c) run x NV*16 output channels, reduced over the
// output pixels (gy rows gy_row floats apart, pixels gy_pix apart); added into acc_out [MR][ocp].
// Small tiles keep two accumulator sets (even and odd pixels) so that more than a handful of FMA
// chains are in flight.
template <int MR, int NV>
SHRINK_AVX512 void wgrad_tile(const float* x, int64_t row_step, int64_t pix_step, const float* gy,
                              int64_t gy_row, int64_t gy_pix, int64_t ocp, int64_t oh, int64_t ow,
                              float* acc_out) {
  constexpr int S = 2 * MR * NV + NV + 1 <= 32 ? 2 : 1;
  __m512 acc[S][MR][NV];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[s][r][v] = _mm512_setzero_ps();
  for (int64_t oi = 0; oi < oh; ++oi) {
    const float* a = x + oi * row_step;
    const float* b = gy + oi * gy_row;
    for (int64_t oj = 0; oj < ow; oj += S) {
#pragma GCC unroll 2
      for (int s = 0; s < S; ++s) {
        if (S > 1 && oj + s >= ow) break;
        const float* as = a + (oj + s) * pix_step;
        __m512 bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + (oj + s) * gy_pix + kLanes * v);
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
          const __m512 av = _mm512_set1_ps(as[r]);
#pragma GCC unroll 2
          for (int v = 0; v < NV; ++v) acc[s][r][v] = _mm512_fmadd_ps(av, bv[v], acc[s][r][v]);
        }
      }
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 sum = acc[0][r][v];
      if (S > 1) sum = _mm512_add_ps(sum, acc[S - 1][r][v]);
      float* o = acc_out + r * ocp + kLanes * v;
      _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), sum));
    }
}

using ConvTileFn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, const float*, int64_t,
                            float*, int64_t, int64_t, int64_t);
using WgradTileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                             int64_t, int64_t, int64_t, float*);

template <int NV, int... I>
constexpr std::array<ConvTileFn, sizeof...(I)> conv_tiles(std::integer_sequence<int, I...>) {
  return {&conv_tile<I + 1, NV>...};
}
template <int NV, int... I>
constexpr std::array<WgradTileFn, sizeof...(I)> wgrad_tiles(std::integer_sequence<int, I...>) {
  return {&wgrad_tile<I + 1, NV>...};
}
const auto kConv1 = conv_tiles<1>(std::make_integer_sequence<int, kMaxRows1>{});
const auto kConv2 = conv_tiles<2>(std::make_integer_sequence<int, kMaxRows2>{});

// Full tiles of the common row widths (28, 14, 7 pixels) with pix_step fixed at compile time,
// for the pixel strides 16-128-channel layers have: cin, or 2 * cin at stride 2, in the forward
// pass; gy's row length in the input gradient's.
template <int MR, int NV, int ROWS = 1>
ConvTileFn fixed_step_tile(int64_t pix_step) {
  switch (pix_step) {
    case 16: return &conv_tile<MR, NV, 16, ROWS>;
    case 32: return &conv_tile<MR, NV, 32, ROWS>;
    case 64: return &conv_tile<MR, NV, 64, ROWS>;
    case 128: return &conv_tile<MR, NV, 128, ROWS>;
    default: return nullptr;
  }
}
// Two 7-pixel rows at once (14 accumulators of 2 vectors), for 7-wide outputs.
ConvTileFn two_row_tile(int64_t pix_step) { return fixed_step_tile<14, 2, 2>(pix_step); }
ConvTileFn fixed_step_tile(int64_t mr, int nv, int64_t pix_step) {
  if (nv == 1 && mr == 28) return fixed_step_tile<28, 1>(pix_step);
  if (nv == 1 && mr == 14) return fixed_step_tile<14, 1>(pix_step);
  if (nv == 1 && mr == 7) return fixed_step_tile<7, 1>(pix_step);
  if (nv == 2 && mr == 14) return fixed_step_tile<14, 2>(pix_step);
  if (nv == 2 && mr == 7) return fixed_step_tile<7, 2>(pix_step);
  return nullptr;
}
const auto kWgrad1 = wgrad_tiles<1>(std::make_integer_sequence<int, kMaxRows1>{});
const auto kWgrad2 = wgrad_tiles<2>(std::make_integer_sequence<int, kMaxRows2>{});

// Splits `extent` into equal tiles of at most `max_rows` (the last may be shorter).
int64_t tile_rows(int64_t extent, int64_t max_rows) {
  if (extent <= 0) return 1;  // nothing to tile (a weight with no input channels)
  return ceil_div(extent, ceil_div(extent, max_rows));
}

// ---- one image -----------------------------------------------------------------------------

// Geometry of one implicit-GEMM pass (see the top of the file).
struct Pass {
  int64_t cin, hp, wp, kh, kw, sh, sw, oh, ow;
  int64_t ocp;  // output channels rounded up to 16: row length of w and out

  Pass(int64_t cin_, int64_t hp_, int64_t wp_, int64_t kh_, int64_t kw_, int64_t sh_, int64_t sw_,
       int64_t oh_, int64_t ow_, int64_t oc)
      : cin(cin_), hp(hp_), wp(wp_), kh(kh_), kw(kw_), sh(sh_), sw(sw_), oh(oh_), ow(ow_),
        ocp(round_up(oc, kLanes)) {}
  int64_t in_size() const { return hp * wp * cin; }
  int64_t out_size() const { return oh * ow * ocp; }
};

// The pass over in [hp][wp][cin] with packed weights w [tap][cin][ocp]; output pixel (oi, oj)
// goes to out + oi*out_row + oj*out_pix (ocp values).
void conv_image(const Pass& g, const float* in, const float* w, float* out, int64_t out_row,
                int64_t out_pix) {
  for (int64_t ob = 0; ob < g.ocp; ob += 2 * kLanes) {
    const bool two = g.ocp - ob >= 2 * kLanes;
    const ConvTileFn* table = two ? kConv2.data() : kConv1.data();
    const int64_t mr = tile_rows(g.ow, two ? kMaxRows2 : kMaxRows1);
    const ConvTileFn full = fixed_step_tile(mr, two ? 2 : 1, g.sw * g.cin);
    const ConvTileFn pair = two && g.ow == 7 ? two_row_tile(g.sw * g.cin) : nullptr;
    const int64_t in_row = g.sh * g.wp * g.cin;
    int64_t oi = 0;
    for (; pair && oi + 1 < g.oh; oi += 2)
      pair(in + oi * in_row, g.sw * g.cin, g.wp * g.cin, g.kh, g.kw * g.cin, w + ob, g.ocp,
           out + oi * out_row + ob, out_pix, in_row, out_row);
    for (; oi < g.oh; ++oi)
      for (int64_t oj = 0; oj < g.ow; oj += mr) {
        const int64_t m = std::min(mr, g.ow - oj);
        (m == mr && full ? full : table[m - 1])(in + (oi * g.sh * g.wp + oj * g.sw) * g.cin, g.sw * g.cin,
                                                g.wp * g.cin, g.kh, g.kw * g.cin, w + ob, g.ocp,
                                                out + oi * out_row + oj * out_pix + ob, out_pix, 0, 0);
      }
  }
}
void conv_image(const Pass& g, const float* in, const float* w, float* out) {
  conv_image(g, in, w, out, g.ow * g.ocp, g.ocp);
}

// x [c][h][w] -> dst [hp][wp][ld] with the image at row pt, column pl; borders and channels
// c..ld-1 are zero.
SHRINK_AVX512 void to_nhwc(const float* x, int64_t c, int64_t h, int64_t w, int64_t pt,
                           int64_t pl, int64_t hp, int64_t wp, int64_t ld, float* dst) {
  std::fill_n(dst, pt * wp * ld, 0.f);
  std::fill_n(dst + (pt + h) * wp * ld, (hp - pt - h) * wp * ld, 0.f);
  for (int64_t i = 0; i < h; ++i) {
    // The 16 channel planes a block reads are 16 streams at once; fetch the next image row of
    // each ahead instead of waiting for the hardware prefetcher to notice them.
    if (i + 1 < h)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t j = 0; j < w; j += 64 / sizeof(float))
          _mm_prefetch(reinterpret_cast<const char*>(x + (ch * h + i + 1) * w + j), _MM_HINT_T0);
    float* row = dst + (i + pt) * wp * ld;
    std::fill_n(row, pl * ld, 0.f);
    std::fill(row + (pl + w) * ld, row + wp * ld, 0.f);
    for (int64_t c0 = 0; c0 < ld; c0 += kLanes)
      for (int64_t j0 = 0; j0 < w; j0 += kLanes)
        transpose_block(x + (c0 * h + i) * w + j0, h * w, std::max<int64_t>(0, c - c0),
                        std::min(kLanes, w - j0), row + (pl + j0) * ld + c0, ld,
                        std::min(kLanes, ld - c0));
  }
}

// src [hw][ld] (first c channels) -> y [c][hw], plus bias[c] when given.
SHRINK_AVX512 void from_nhwc(const float* src, int64_t ld, int64_t c, int64_t hw,
                             const float* bias, float* y) {
  for (int64_t c0 = 0; c0 < c; c0 += kLanes)
    for (int64_t q0 = 0; q0 < hw; q0 += kLanes)
      transpose_block(src + q0 * ld + c0, ld, std::min(kLanes, hw - q0),
                      std::min(kLanes, c - c0), y + c0 * hw + q0, hw, std::min(kLanes, hw - q0));
  if (bias)
    for (int64_t ch = 0; ch < c; ++ch) {
      float* __restrict d = y + ch * hw;
      for (int64_t q = 0; q < hw; ++q) d[q] += bias[ch];
    }
}

// Runs fn(in, out) for each image n, in and out being per-thread scratch of the pass's sizes.
template <typename Fn>
void for_each_image(int64_t n, const Pass& g, Fn fn) {
  parallel_for(n, 1, [&](int64_t n0, int64_t n1) {
    float* in = scratch(kScratchIn, g.in_size());
    float* out = scratch(kScratchOut, g.out_size());
    for (int64_t i = n0; i < n1; ++i) fn(i, in, out);
  });
}

// Adds one image's weight gradient into acc [tap][c][ocp]: in is the image as the forward pass
// reads it, gyt its output gradient with rows gy_row and pixels gy_pix floats apart (at least
// ocp channels each, zero past oc).
// Only output channels [ob_begin, ob_end) (multiples of 32, or ob_end = ocp).
void wgrad_image(const Conv2dParams& p, const Pass& g, const float* in, const float* gyt,
                 int64_t gy_row, int64_t gy_pix, float* acc, int64_t ob_begin, int64_t ob_end) {
  // Rows of a gradient tile: a kernel row's (kj, c) run, contiguous in the image and in the
  // [tap][c][oc] layout alike.
  const int64_t run = p.kw * p.c;
  for (int64_t ob = ob_begin; ob < ob_end; ob += 2 * kLanes) {
    const bool two = ob_end - ob >= 2 * kLanes;
    const WgradTileFn* table = two ? kWgrad2.data() : kWgrad1.data();
    const int64_t mr = tile_rows(run, two ? kMaxRows2 : kMaxRows1);
    for (int64_t ki = 0; ki < p.kh; ++ki)
      for (int64_t r0 = 0; r0 < run; r0 += mr)
        table[std::min(mr, run - r0) - 1](in + ki * g.wp * p.c + r0, g.sh * g.wp * p.c,
                                          g.sw * p.c, gyt + ob, gy_row, gy_pix, g.ocp, p.oh, p.ow,
                                          acc + (ki * run + r0) * g.ocp + ob);
  }
}

// The input gradient splits by phase: the gx pixels (ph + sh*a, pw + sw*b) only receive taps
// ki = ph + pad_h (mod sh), kj = pw + pad_w (mod sw), and for them it is a stride-1 pass over
// gy with that sub-kernel rotated 180 degrees. Stride 1 is one phase with the whole kernel.
struct InputGradPhase {
  int64_t ph, pw;         // first gx row and column of the phase
  Pass pass;              // over padded gy: rows a, columns b, the sub-kernel
  int64_t in_off;         // where pixel (0, 0)'s first tap starts in padded gy
  std::vector<float> w;   // [u][v][gy_ld][c rounded to 16]
};
struct InputGradPlan {
  int64_t mt = 0, ml = 0, ghp = 0, gwp = 0;  // zero rows/cols above/left of gy; padded size
  std::vector<InputGradPhase> phases;        // phases with pixels and taps
  bool covers_all = true;                    // false: some gx pixels get no tap at all
};

// One axis of a phase: pixels na; taps k0, k0 + stride, ... (ku of them); pixel a's tap k0 reads
// gy row a + a0 (the last tap, u = ku-1, of the rotated sub-kernel).
struct PhaseAxis {
  int64_t k0, ku, a0, na;
  PhaseAxis(int64_t phase, int64_t pad, int64_t stride, int64_t k, int64_t n)
      : k0((phase + pad) % stride),
        ku(k0 < k ? ceil_div(k - k0, stride) : 0),
        a0((phase + pad - k0) / stride),
        na(phase < n ? ceil_div(n - phase, stride) : 0) {}
};

InputGradPlan plan_input_grad(const Conv2dParams& p, const float* w, int64_t gy_ld) {
  InputGradPlan plan;
  for (int64_t ph = 0; ph < p.stride_h; ++ph) {
    const PhaseAxis r(ph, p.pad_h, p.stride_h, p.kh, p.h);
    if (r.ku) plan.mt = std::max(plan.mt, r.ku - 1 - r.a0);
  }
  for (int64_t pw = 0; pw < p.stride_w; ++pw) {
    const PhaseAxis c(pw, p.pad_w, p.stride_w, p.kw, p.w);
    if (c.ku) plan.ml = std::max(plan.ml, c.ku - 1 - c.a0);
  }
  plan.ghp = plan.mt + p.oh;
  plan.gwp = plan.ml + p.ow;
  for (int64_t ph = 0; ph < p.stride_h; ++ph) {
    const PhaseAxis r(ph, p.pad_h, p.stride_h, p.kh, p.h);
    if (r.ku) plan.ghp = std::max(plan.ghp, plan.mt + r.a0 + r.na);
  }
  for (int64_t pw = 0; pw < p.stride_w; ++pw) {
    const PhaseAxis c(pw, p.pad_w, p.stride_w, p.kw, p.w);
    if (c.ku) plan.gwp = std::max(plan.gwp, plan.ml + c.a0 + c.na);
  }
  const int64_t taps = p.kh * p.kw;
  for (int64_t ph = 0; ph < p.stride_h; ++ph)
    for (int64_t pw = 0; pw < p.stride_w; ++pw) {
      const PhaseAxis r(ph, p.pad_h, p.stride_h, p.kh, p.h);
      const PhaseAxis c(pw, p.pad_w, p.stride_w, p.kw, p.w);
      if (r.na == 0 || c.na == 0) continue;
      if (r.ku == 0 || c.ku == 0) {
        plan.covers_all = false;
        continue;
      }
      InputGradPhase phase{ph, pw,
                           Pass(gy_ld, plan.ghp, plan.gwp, r.ku, c.ku, 1, 1, r.na, c.na, p.c),
                           ((r.a0 - r.ku + 1 + plan.mt) * plan.gwp + (c.a0 - c.ku + 1 + plan.ml)) *
                               gy_ld,
                           {}};
      const int64_t cp = phase.pass.ocp;
      phase.w.assign(r.ku * c.ku * gy_ld * cp, 0.f);
      for (int64_t u = 0; u < r.ku; ++u)
        for (int64_t v = 0; v < c.ku; ++v) {
          const int64_t tap = (r.k0 + p.stride_h * (r.ku - 1 - u)) * p.kw +
                              (c.k0 + p.stride_w * (c.ku - 1 - v));
          for (int64_t o = 0; o < p.oc; ++o)
            for (int64_t ch = 0; ch < p.c; ++ch)
              phase.w[((u * c.ku + v) * gy_ld + o) * cp + ch] = w[(o * p.c + ch) * taps + tap];
        }
      plan.phases.push_back(std::move(phase));
    }
  return plan;
}


}  // namespace

bool available() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return has;
}
bool enabled() { return enabled_flag().load(std::memory_order_relaxed); }
void set_enabled(bool on) { enabled_flag().store(on, std::memory_order_relaxed); }

// Below 3 input channels a tile's reduction (kw * c values per kernel row) is too short to pay
// for its accumulators: im2col + OpenBLAS was 2x faster forward at c = 1, 1.5x at c = 2. The
// input gradient writes c channels padded to 16 lanes, so up to 4 channels it wastes most of its
// work: im2col was 1.3-1.4x faster there at c = 3 and 4 (2026-11-30, Intel host, batch 64).
constexpr int64_t kMinChannels = 3;
constexpr int64_t kMinInputGradChannels = 5;

bool handles(const Conv2dParams& p) {
  return enabled() && available() && p.groups == 1 && p.dil_h == 1 && p.dil_w == 1 && p.c >= kMinChannels;
}
bool handles_input_grad(const Conv2dParams& p) { return handles(p) && p.c >= kMinInputGradChannels; }

void forward(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y,
             const std::function<void(int64_t n)>& after_image) {
  const Pass g(p.c, p.h + 2 * p.pad_h, p.w + 2 * p.pad_w, p.kh, p.kw, p.stride_h, p.stride_w, p.oh,
               p.ow, p.oc);
  const int64_t taps = p.kh * p.kw;
  std::vector<float> wpk(taps * p.c * g.ocp, 0.f);  // [tap][c][oc]
  for (int64_t o = 0; o < p.oc; ++o)
    for (int64_t c = 0; c < p.c; ++c)
      for (int64_t t = 0; t < taps; ++t)
        wpk[(t * p.c + c) * g.ocp + o] = w[(o * p.c + c) * taps + t];
  for_each_image(p.n, g, [&](int64_t n, float* in, float* out) {
    to_nhwc(x + n * p.c * p.h * p.w, p.c, p.h, p.w, p.pad_h, p.pad_w, g.hp, g.wp, p.c, in);
    conv_image(g, in, wpk.data(), out);
    from_nhwc(out, g.ocp, p.oc, p.oh * p.ow, bias, y + n * p.oc * p.oh * p.ow);
    if (after_image) after_image(n);
  });
}

void backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  backward(p, gy, nullptr, w, gx, nullptr);
}

void backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw) {
  backward(p, gy, x, nullptr, nullptr, gw);
}

void backward(const Conv2dParams& p, const float* gy, const float* x, const float* w, float* gx,
              float* gw) {
  const int64_t taps = p.kh * p.kw;
  // Per image, gy goes to NHWC once: with the zero margins the input-gradient phases read, its
  // channels rounded up to 16 when the weight gradient reads them as vectors.
  const int64_t gy_ld = gw ? round_up(p.oc, kLanes) : p.oc;
  InputGradPlan plan;
  if (gx) plan = plan_input_grad(p, w, gy_ld);
  const int64_t ghp = gx ? plan.ghp : p.oh, gwp = gx ? plan.gwp : p.ow;
  const int64_t gy_origin = (plan.mt * gwp + plan.ml) * gy_ld;  // gy pixel (0, 0)
  const int64_t cp = round_up(p.c, kLanes);
  // Weight gradient: the forward geometry over x, accumulated as [tap][c][oc rounded to 16].
  const Pass gfw(p.c, p.h + 2 * p.pad_h, p.w + 2 * p.pad_w, p.kh, p.kw, p.stride_h, p.stride_w,
                 p.oh, p.ow, p.oc);
  const int64_t wsize = gw ? taps * p.c * gfw.ocp : 0;
  // Each chunk of images accumulates its own weight-gradient partial, summed in chunk order, so
  // the result is reproducible for a given thread count; with many threads and a large weight
  // the chunks' output channels split into slices instead (wgrad_split.h).
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(num_threads(), p.n));
  const WgradSplit split = gw ? wgrad_split(num_threads(), p.n, wsize * static_cast<int64_t>(sizeof(float)),
                                            ceil_div(gfw.ocp, 2 * kLanes))
                              : WgradSplit{threads, 1};
  const int chunks = static_cast<int>(split.chunks);
  std::vector<std::vector<float>> partial(gw ? chunks : 0, std::vector<float>(wsize, 0.f));
  // One image: gy to NHWC, then the input gradient and/or the weight gradient's channels
  // [ob0, ob1) into acc.
  auto image = [&](int64_t n, bool do_gx, float* acc, int64_t ob0, int64_t ob1) {
    float* gyt = scratch(kScratchGrad, ghp * gwp * gy_ld);
    to_nhwc(gy + n * p.oc * p.oh * p.ow, p.oc, p.oh, p.ow, plan.mt, plan.ml, ghp, gwp, gy_ld, gyt);
    if (do_gx) {
      float* out = scratch(kScratchOut, p.h * p.w * cp);
      if (!plan.covers_all) std::fill_n(out, p.h * p.w * cp, 0.f);
      for (const InputGradPhase& ph : plan.phases)
        conv_image(ph.pass, gyt + ph.in_off, ph.w.data(), out + (ph.ph * p.w + ph.pw) * cp,
                   p.stride_h * p.w * cp, p.stride_w * cp);
      from_nhwc(out, cp, p.c, p.h * p.w, nullptr, gx + n * p.c * p.h * p.w);
    }
    if (acc) {
      float* in = scratch(kScratchIn, gfw.in_size());
      to_nhwc(x + n * p.c * p.h * p.w, p.c, p.h, p.w, p.pad_h, p.pad_w, gfw.hp, gfw.wp, p.c, in);
      wgrad_image(p, gfw, in, gyt + gy_origin, gwp * gy_ld, gy_ld, acc, ob0, ob1);
    }
  };
  if (split.slices == 1) {
    parallel_chunks(p.n, chunks, [&](int chunk, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) image(n, gx != nullptr, gw ? partial[chunk].data() : nullptr, 0, gfw.ocp);
    });
  } else {
    if (gx) parallel_chunks(p.n, static_cast<int>(threads), [&](int, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) image(n, true, nullptr, 0, 0);
    });
    const int items = static_cast<int>(split.chunks * split.slices);
    parallel_chunks(items, items, [&](int item, int64_t, int64_t) {
      const int64_t chunk = item / split.slices, slice = item % split.slices;
      int64_t ob0, ob1;
      slice_range(gfw.ocp, 2 * kLanes, slice, split.slices, ob0, ob1);
      for (int64_t n = p.n * chunk / chunks; n < p.n * (chunk + 1) / chunks; ++n)
        image(n, false, partial[chunk].data(), ob0, ob1);
    });
  }
  if (!gw) return;
  for (int k = 1; k < chunks; ++k)
    for (int64_t i = 0; i < wsize; ++i) partial[0][i] += partial[k][i];
  for (int64_t o = 0; o < p.oc; ++o)
    for (int64_t c = 0; c < p.c; ++c)
      for (int64_t t = 0; t < taps; ++t)
        gw[(o * p.c + c) * taps + t] = partial[0][(t * p.c + c) * gfw.ocp + o];
}

}  // namespace shrink::cpu::direct_conv
