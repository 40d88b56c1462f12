// CPU kernels of integer inference (backend.h Int8Layer): the input quantized to bytes, tiles of
// exact 32-bit sums (int8_gemm.h), and the epilogue that turns each tile into float outputs —
// dequantization, bias, requantization, a folded batch norm and ReLU in one pass over the tile
// while it is in L1.
//
// Linear: the rows of x are quantized once into A [m][k4]. Convolution: x is quantized once into
// NHWC bytes; each task builds the im2col rows of its chunk of output pixels (k ordered
// ky, kx, channel: whole runs of channel bytes are copied, padding is the zero point's byte) and
// multiplies them by its panels of packed weights. Tiles are scattered into NCHW.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/core/scalar_ops.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/host_memory.h"
#include "framework/cpu/int8_gemm.h"
#include "framework/cpu/transpose.h"

namespace shrink::cpu {

namespace {

using int8::kMR;
using int8::kNR;
using int8::kRowAlign;

// The epilogue's per-channel terms, made branch-free so that its loop vectorises: the zero
// point's share of each sum, the bias (0 without one), the folded batch norm (1 and 0 without
// one) and ReLU as a lower bound (-inf without it).
struct Epilogue {
  std::vector<int32_t> zero_share;
  std::vector<float> scale, bias, mul, add;
  float lower;
  bool out_quant;
  float os, oz, oqmin, oqmax;

  explicit Epilogue(const Int8Layer& l)
      : zero_share(static_cast<size_t>(l.n)),
        scale(l.scale.data<float>(), l.scale.data<float>() + l.n),
        bias(static_cast<size_t>(l.n), 0.f),
        mul(static_cast<size_t>(l.n), 1.f),
        add(static_cast<size_t>(l.n), 0.f),
        lower(l.relu ? 0.f : -std::numeric_limits<float>::infinity()),
        out_quant(l.out_quant),
        os(l.out_scale),
        oz(l.out_zero_point),
        oqmin(l.out_qmin),
        oqmax(l.out_qmax) {
    const int32_t zero_byte = static_cast<int32_t>(l.in_zero_point) + l.in_offset;
    for (int64_t n = 0; n < l.n; ++n) zero_share[n] = zero_byte * l.col_sum.data<int32_t>()[n];
    if (l.bias.defined()) std::copy(l.bias.data<float>(), l.bias.data<float>() + l.n, bias.begin());
    if (l.post_mul.defined()) {
      std::copy(l.post_mul.data<float>(), l.post_mul.data<float>() + l.n, mul.begin());
      std::copy(l.post_add.data<float>(), l.post_add.data<float>() + l.n, add.begin());
    }
  }

  // f[r][j] for the tile's `rows` x `cols` sums c[r][j] of output channels n0 + j.
  void apply(const int32_t* c, int rows, int64_t n0, int cols, float* f) const {
    const int32_t* zs = zero_share.data() + n0;
    const float *sc = scale.data() + n0, *b = bias.data() + n0, *mu = mul.data() + n0, *ad = add.data() + n0;
    for (int r = 0; r < rows; ++r) {
      const int32_t* cr = c + r * kNR;
      float* fr = f + r * kNR;
      if (out_quant) {
        for (int j = 0; j < cols; ++j) {
          const float y = static_cast<float>(cr[j] - zs[j]) * sc[j] + b[j];
          const float q = scalar::fake_quant_value(y, os, oz, oqmin, oqmax) * mu[j] + ad[j];
          fr[j] = q > lower ? q : lower;
        }
      } else {
        for (int j = 0; j < cols; ++j) {
          const float y = (static_cast<float>(cr[j] - zs[j]) * sc[j] + b[j]) * mu[j] + ad[j];
          fr[j] = y > lower ? y : lower;
        }
      }
    }
  }
};

// The input's quantization, as the fake quantizers compute it (scalar_ops.h quant_forward):
// 16 values at a time with AVX-512 (same division and round-half-to-even, so the same bytes),
// plain loops elsewhere.
#define SHRINK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
struct InputQuant {
  float s, z, qmin, qmax, offset;
  InputQuant(float s, float z, float qmin, float qmax, int offset)
      : s(s), z(z), qmin(qmin), qmax(qmax), offset(static_cast<float>(offset)) {}
  // The layer's own input grid, and the next layer's (out_bytes).
  static InputQuant input(const Int8Layer& l) {
    return {l.in_scale, l.in_zero_point, l.in_qmin, l.in_qmax, l.in_offset};
  }
  static InputQuant next(const Int8Layer& l) {
    return {l.next_scale, l.next_zero_point, l.next_qmin, l.next_qmax, l.next_offset};
  }

  // NaN goes to qmin, as in the AVX-512 path (max_ps returns its second operand for a NaN).
  uint8_t one(float x) const {
    float v = z + x / s;
    v = !(v >= qmin) ? qmin : (v > qmax ? qmax : v);
    return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v) + offset));
  }
// GCC 12's masked intrinsics start from _mm512_undefined_ps(), a self-initialised variable that
// -Wuninitialized reports at every use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  SHRINK_AVX512 void run_avx512(const float* x, int64_t n, uint8_t* out) const {
    const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), lo = _mm512_set1_ps(qmin), hi = _mm512_set1_ps(qmax),
                 off = _mm512_set1_ps(offset);
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
      __m512 v = _mm512_add_ps(vz, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), off);
      _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
  }
#pragma GCC diagnostic pop
  void operator()(const float* x, int64_t n, uint8_t* out) const {
    if (int8::uses_avx512()) return run_avx512(x, n, out);
    for (int64_t i = 0; i < n; ++i) out[i] = one(x[i]);
  }
};

// n bytes as 16-byte moves: the im2col runs are a kernel row's taps (kw x channels, often 48 or
// 192 bytes), where a call to memcpy costs more than the copy (this file is compiled without
// GCC's loop-to-memcpy conversion: framework/CMakeLists.txt).
inline void copy_run(uint8_t* __restrict dst, const uint8_t* __restrict src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
  for (; i < n; ++i) dst[i] = src[i];
}

// n copies of a byte (a padded tap's zero point), for the same reason.
inline void fill_run(uint8_t* __restrict dst, uint8_t value, int64_t n) {
  int64_t i = 0;
  const __m128i v = _mm_set1_epi8(static_cast<char>(value));
  for (; i + 16 <= n; i += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v);
  for (; i < n; ++i) dst[i] = value;
}

// The im2col rows of output pixels m0 .. m0 + rows - 1 from NHWC bytes, each row ordered
// (ky, kx, channel) and k4 bytes long; taps in the padding get the zero point's byte. The
// geometry is copied into locals: the byte stores may alias anything, and the compiler would
// otherwise reload every field of `p` after each one.
void im2col_rows(const Conv2dParams& p, const uint8_t* __restrict xq, uint8_t zero_byte, int64_t m0, int64_t rows,
                 int64_t k4, uint8_t* __restrict out) {
  const int64_t c = p.c, h = p.h, w = p.w, ow = p.ow, ohw = p.oh * p.ow, kh = p.kh, kw = p.kw;
  const int64_t sh = p.stride_h, sw = p.stride_w, ph = p.pad_h, pw = p.pad_w, dh = p.dil_h, dw = p.dil_w;
  int64_t im = m0 / ohw, oy = (m0 % ohw) / ow, ox = m0 % ow;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = out + r * k4;
    const uint8_t* image = xq + im * h * w * c;
    const int64_t ix0 = ox * sw - pw, ix1 = ix0 + (kw - 1) * dw;
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t iy = oy * sh - ph + ky * dh;
      if (dw == 1 && iy >= 0 && iy < h && ix0 >= 0 && ix1 < w) {  // the kernel row's taps are adjacent
        copy_run(row, image + (iy * w + ix0) * c, kw * c);
        row += kw * c;
        continue;
      }
      for (int64_t kx = 0; kx < kw; ++kx, row += c) {
        const int64_t ix = ox * sw - pw + kx * dw;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
          fill_run(row, zero_byte, c);
        else
          copy_run(row, image + (iy * w + ix) * c, c);
      }
    }
    if (++ox == ow) {
      ox = 0;
      if (++oy == p.oh) oy = 0, ++im;
    }
  }
}

// Byte buffers from the host allocator (large blocks are reused, not faulted in afresh), left
// uninitialised: every byte is written before it is read, and zero-filling megabytes on one
// thread showed up in the int8 forward's profile.
struct HostFree {
  void operator()(uint8_t* p) const { host_free(p); }
};
using Bytes = std::unique_ptr<uint8_t[], HostFree>;
Bytes uninitialised_bytes(int64_t n) {
  return Bytes(static_cast<uint8_t*>(host_allocate(static_cast<size_t>(std::max<int64_t>(n, 1)))));
}

// NHWC bytes with a border of `zero_byte` (the convolution's padding), plus `slack` more bytes of
// it at the end: [n][h + 2 pad_h][w + 2 pad_w][c].
Bytes pad_nhwc(const Conv2dParams& p, const uint8_t* xq, uint8_t zero_byte, int64_t slack) {
  const int64_t c = p.c, hp = p.h + 2 * p.pad_h, wp = p.w + 2 * p.pad_w, row = wp * c;
  Bytes padded = uninitialised_bytes(p.n * hp * row + slack);
  uint8_t* out = padded.get();
  parallel_for(p.n * hp, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t img = r / hp, iy = r % hp - p.pad_h;
      uint8_t* d = out + r * row;
      if (iy < 0 || iy >= p.h) {
        std::memset(d, zero_byte, row);
        continue;
      }
      std::memset(d, zero_byte, p.pad_w * c);
      std::memcpy(d + p.pad_w * c, xq + (img * p.h + iy) * p.w * c, p.w * c);
      std::memset(d + (p.pad_w + p.w) * c, zero_byte, p.pad_w * c);
    }
  });
  std::memset(out + p.n * hp * row, zero_byte, slack);
  return padded;
}

// im2col_rows for narrow kernel rows (kw * c < 16 bytes, no horizontal dilation) from pad_nhwc's
// copy: each kernel row is one 16-byte copy. A copy runs past its kw * c bytes into the next
// kernel row's place (rewritten next), the row's k..k4 tail or the next row's start (written
// after): callers zero the tails afterwards and give `out` and `padded` 16 bytes of slack.
void im2col_rows_narrow(const Conv2dParams& p, const uint8_t* __restrict padded, int64_t m0, int64_t rows, int64_t k4,
                        uint8_t* __restrict out) {
  const int64_t c = p.c, hp = p.h + 2 * p.pad_h, wp = p.w + 2 * p.pad_w, ow = p.ow, ohw = p.oh * p.ow;
  const int64_t kh = p.kh, run = p.kw * c, sh = p.stride_h, sw = p.stride_w, dh = p.dil_h;
  int64_t im = m0 / ohw, oy = (m0 % ohw) / ow, ox = m0 % ow;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* base = padded + ((im * hp + oy * sh) * wp + ox * sw) * c;
    for (int64_t ky = 0; ky < kh; ++ky)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r * k4 + ky * run),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + ky * dh * wp * c)));
    if (++ox == ow) {
      ox = 0;
      if (++oy == p.oh) oy = 0, ++im;
    }
  }
}

// Tile values f[r][j] to out[j * stride + r]: channel j's run of `rows` pixels.
void scatter_tile(const float* __restrict f, int rows, int cols, float* __restrict out, int64_t stride) {
  if (int8::uses_avx512()) {  // 16x16 blocks transposed in registers, 16 pixels of a channel per store
    for (int r0 = 0; r0 < rows; r0 += 16) {
      const int nr = std::min(16, rows - r0);
      for (int j0 = 0; j0 < cols; j0 += 16)
        transpose_block(f + r0 * kNR + j0, kNR, nr, std::min(16, cols - j0), out + j0 * stride + r0, stride, nr);
    }
    return;
  }
  for (int j = 0; j < cols; ++j)
    for (int r = 0; r < rows; ++r) out[j * stride + r] = f[r * kNR + j];
}

// A 16x16 block of bytes transposed in registers (SSE2): row i of src (16 bytes at
// src + i * src_stride) becomes column i of dst. Four rounds of interleaving, each doubling the
// width of what stays together: bytes of two rows, then pairs, quads and eights of rows.
void transpose16(const uint8_t* src, int64_t src_stride, uint8_t* dst, int64_t dst_stride) {
  __m128i a[16], b[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * src_stride));
  for (int k = 0; k < 8; ++k) {  // b[2k]: columns 0-7 of rows 2k, 2k+1; b[2k+1]: columns 8-15
    b[2 * k] = _mm_unpacklo_epi8(a[2 * k], a[2 * k + 1]);
    b[2 * k + 1] = _mm_unpackhi_epi8(a[2 * k], a[2 * k + 1]);
  }
  for (int m = 0; m < 4; ++m) {  // a[4m + q]: columns 4q..4q+3 of rows 4m..4m+3
    a[4 * m] = _mm_unpacklo_epi16(b[4 * m], b[4 * m + 2]);
    a[4 * m + 1] = _mm_unpackhi_epi16(b[4 * m], b[4 * m + 2]);
    a[4 * m + 2] = _mm_unpacklo_epi16(b[4 * m + 1], b[4 * m + 3]);
    a[4 * m + 3] = _mm_unpackhi_epi16(b[4 * m + 1], b[4 * m + 3]);
  }
  for (int h = 0; h < 2; ++h)  // b[8h + t]: columns 2t, 2t+1 of rows 8h..8h+7
    for (int q = 0; q < 4; ++q) {
      b[8 * h + 2 * q] = _mm_unpacklo_epi32(a[8 * h + q], a[8 * h + 4 + q]);
      b[8 * h + 2 * q + 1] = _mm_unpackhi_epi32(a[8 * h + q], a[8 * h + 4 + q]);
    }
  for (int t = 0; t < 8; ++t) {  // column 2t and 2t+1, all 16 rows
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * t * dst_stride), _mm_unpacklo_epi64(b[t], b[8 + t]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (2 * t + 1) * dst_stride), _mm_unpackhi_epi64(b[t], b[8 + t]));
  }
}

// [c][w] bytes to [w][c]: 16x16 blocks in registers, the edges byte by byte.
void transpose_bytes(const uint8_t* __restrict src, int64_t c, int64_t w, uint8_t* __restrict dst) {
  const int64_t c16 = c / 16 * 16, w16 = w / 16 * 16;
  for (int64_t ch = 0; ch < c16; ch += 16)
    for (int64_t ix = 0; ix < w16; ix += 16) transpose16(src + ch * w + ix, w, dst + ix * c + ch, c);
  for (int64_t ix = 0; ix < w; ++ix)
    for (int64_t ch = ix < w16 ? c16 : 0; ch < c; ++ch) dst[ix * c + ch] = src[ch * w + ix];
}

// Tasks: row blocks x groups of weight panels, so that small row counts (batch 1) still spread
// over the threads. Each task gets its rows and its panel range.
struct TaskGrid {
  int64_t row_blocks, panels, groups;
  TaskGrid(int64_t rows, int64_t rows_per_block, int64_t n) {
    row_blocks = (rows + rows_per_block - 1) / rows_per_block;
    panels = int8::round_up(n, kNR) / kNR;
    const int64_t want = 2 * static_cast<int64_t>(num_threads());
    groups = row_blocks >= want ? 1 : std::min(panels, (want + row_blocks - 1) / row_blocks);
  }
  int64_t tasks() const { return row_blocks * groups; }
  int64_t panel_begin(int64_t g) const { return g * panels / groups; }
};

thread_local std::vector<uint8_t> t_rows;  // a task's im2col rows

const int64_t kNoOffset = 0;

// A plain matrix of rows at stride lda (one tap).
struct PlainRows {
  const uint8_t* a;
  int64_t lda, k4;
  int8::TileA operator()(int64_t r0) const { return {a + r0 * lda, lda, &kNoOffset, 1, k4}; }
};

// Multiplies `rows` rows of A (tile_a(r0): the tile starting at row r0; every row of a full tile
// readable) by weight panels [p0, p1) and hands each finished tile to store(first_row, rows,
// first_column, columns, f), the epilogue's floats f[r * kNR + j]. A panel with at most 16 live
// columns takes the narrow tile.
template <typename RowSource, typename Store>
void multiply_rows(const RowSource& tile_a, int64_t rows, const Int8Layer& l, int64_t k4, int64_t p0, int64_t p1,
                   const Epilogue& epi, Store&& store) {
  alignas(64) int32_t acc[kRowAlign * kNR];
  alignas(64) float f[kRowAlign * kNR];
  const int8_t* packed = l.packed.data<int8_t>();
  for (int64_t q = p0; q < p1; ++q) {
    const int cols = static_cast<int>(std::min<int64_t>(kNR, l.n - q * kNR));
    const bool narrow = cols <= int8::kNRNarrow;
    const int height = narrow ? int8::kMRNarrow : kMR;
    const int8_t* b = packed + q * kNR * k4;
    for (int64_t r0 = 0; r0 < rows; r0 += height) {
      const int tr = static_cast<int>(std::min<int64_t>(height, rows - r0));
      if (narrow)
        int8::tile_narrow(tile_a(r0), b, acc);
      else
        int8::tile(tile_a(r0), b, acc);
      epi.apply(acc, tr, q * kNR, cols, f);
      store(r0, tr, q * kNR, cols, f);
    }
  }
}

}  // namespace

Tensor CpuBackend::int8_pack(const Tensor& w) {
  const int64_t n = w.size(0), k = w.size(1);
  Tensor out = Tensor::empty({int8::packed_bytes(n, k)}, DType::I8, Device::CPU);
  int8::pack_b(w.data<int8_t>(), n, k, out.data<int8_t>());
  return out;
}

void CpuBackend::int8_linear(const Int8Layer& l, const Tensor& x, Tensor& y) {
  const int64_t m = x.size(0), k = l.k, n = l.n, k4 = int8::padded_k(k);
  // Rows padded to k4 bytes (and to whole tiles) with zeros: quantized here, or the previous
  // layer's bytes copied.
  std::vector<uint8_t> a(static_cast<size_t>(int8::round_up(m, kRowAlign) * k4), 0);
  if (x.dtype() == DType::U8) {
    const uint8_t* xb = x.data<uint8_t>();
    for (int64_t r = 0; r < m; ++r) std::memcpy(a.data() + r * k4, xb + r * k, k);
  } else {
    const float* xp = x.data<float>();
    const InputQuant quant = InputQuant::input(l);
    parallel_for(m, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) quant(xp + r * k, k, a.data() + r * k4);
    });
  }
  const Epilogue epi(l);
  const InputQuant next = InputQuant::next(l);
  const TaskGrid grid(m, kRowAlign, n);
  parallel_for(grid.tasks(), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / grid.row_blocks, row0 = (t % grid.row_blocks) * kRowAlign;
      multiply_rows(PlainRows{a.data() + row0 * k4, k4, k4}, std::min<int64_t>(kRowAlign, m - row0), l, k4,
                    grid.panel_begin(g), grid.panel_begin(g + 1), epi,
                    [&](int64_t r0, int tr, int64_t n0, int cols, const float* f) {
                      for (int r = 0; r < tr; ++r) {
                        const int64_t row = row0 + r0 + r;
                        if (l.out_bytes) next(f + r * kNR, cols, y.data<uint8_t>() + row * n + n0);
                        else std::memcpy(y.data<float>() + row * n + n0, f + r * kNR, cols * sizeof(float));
                      }
                    });
    }
  });
}

void CpuBackend::int8_conv2d(const Conv2dParams& p, const Int8Layer& l, const Tensor& x, Tensor& y) {
  const int64_t c = p.c, hw = p.h * p.w, ohw = p.oh * p.ow, m = p.n * ohw;
  const int64_t k = l.k, k4 = int8::padded_k(k), n = l.n;
  const uint8_t zero_byte = static_cast<uint8_t>(static_cast<int32_t>(l.in_zero_point) + l.in_offset);

  // The input as NHWC bytes: given so by the previous int8 layer, or quantized here.
  Bytes own;
  const uint8_t* xq;
  if (x.dtype() == DType::U8) {
    xq = x.data<uint8_t>();
  } else {
    own = uninitialised_bytes(p.n * hw * c);
    const float* xp = x.data<float>();
    const InputQuant quant = InputQuant::input(l);
    parallel_for(p.n, 1, [&](int64_t i0, int64_t i1) {
      std::vector<uint8_t> planes(static_cast<size_t>(c * hw));  // one image as [c][hw] bytes
      for (int64_t img = i0; img < i1; ++img) {
        quant(xp + img * c * hw, c * hw, planes.data());
        transpose_bytes(planes.data(), c, hw, own.get() + img * hw * c);
      }
    });
    xq = own.get();
  }

  const Epilogue epi(l);
  const InputQuant next = InputQuant::next(l);
  // The output rows m0 .. m0 + rows - 1 (pixels in NHWC order) of panel group g, from tiles of A.
  auto run = [&](int64_t m0, int64_t rows, int64_t p0, int64_t p1, const auto& tile_a) {
    if (l.out_bytes) {
      uint8_t* yb = y.data<uint8_t>();
      multiply_rows(tile_a, rows, l, k4, p0, p1, epi, [&](int64_t r0, int tr, int64_t n0, int cols, const float* f) {
        for (int r = 0; r < tr; ++r) next(f + r * kNR, cols, yb + (m0 + r0 + r) * n + n0);
      });
      return;
    }
    float* yp = y.data<float>();
    multiply_rows(tile_a, rows, l, k4, p0, p1, epi, [&](int64_t r0, int tr, int64_t n0, int cols, const float* f) {
      const int64_t first = m0 + r0, img0 = first / ohw, pix0 = first % ohw;
      if (pix0 + tr <= ohw) {  // the tile's pixels lie in one image: one run per channel
        scatter_tile(f, tr, cols, yp + (img0 * n + n0) * ohw + pix0, ohw);
        return;
      }
      for (int r = 0; r < tr; ++r) {
        const int64_t mm = first + r;
        scatter_tile(f + r * kNR, 1, cols, yp + ((mm / ohw) * n + n0) * ohw + mm % ohw, ohw);
      }
    });
  };

  // A 1x1, stride-1, unpadded convolution multiplies the NHWC bytes as they are (except in a last
  // block whose padded rows would run past the input).
  const bool direct = p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 &&
                      p.pad_w == 0 && c % 4 == 0;
  // Implicit GEMM: with whole groups of 4 channels, a tile of pixels from one output row reads
  // each tap straight from a zero-point-padded copy of the input (rows at stride stride_w * c),
  // so nothing is copied per tap. Output rows shorter than a tile would waste most of it: those
  // layers take im2col.
  if (!direct && c % 4 == 0 && p.ow >= kMR) {
    const int64_t hp = p.h + 2 * p.pad_h, wp = p.w + 2 * p.pad_w, row_step = p.stride_w * c;
    // Slack: a tile reading kRowAlign rows from the last output row's start stays inside.
    const Bytes padded = pad_nhwc(p, xq, zero_byte, kRowAlign * p.stride_w * c);
    std::vector<int64_t> taps;
    for (int64_t ky = 0; ky < p.kh; ++ky)
      for (int64_t kx = 0; kx < p.kw; ++kx) taps.push_back((ky * p.dil_h * wp + kx * p.dil_w) * c);
    const TaskGrid grid(p.n * p.oh, 1, n);  // one output row per task
    parallel_for(grid.tasks(), 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t g = t / grid.row_blocks, row = t % grid.row_blocks, img = row / p.oh, oy = row % p.oh;
        const uint8_t* base = padded.get() + (img * hp + oy * p.stride_h) * wp * c;
        run(row * p.ow, p.ow, grid.panel_begin(g), grid.panel_begin(g + 1), [&](int64_t r0) {
          return int8::TileA{base + r0 * row_step, row_step, taps.data(), static_cast<int>(taps.size()), c};
        });
      }
    });
    return;
  }

  // Narrow kernel rows (e.g. one input channel): one 16-byte copy each from a padded copy.
  const bool narrow = !direct && c * p.kw < 16 && p.dil_w == 1;
  const Bytes padded = narrow ? pad_nhwc(p, xq, zero_byte, 16) : Bytes();
  const int64_t block = std::clamp<int64_t>((262144 / k4) / kRowAlign * kRowAlign, kRowAlign, 8 * kRowAlign);
  const TaskGrid grid(m, block, n);
  parallel_for(grid.tasks(), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / grid.row_blocks, m0 = (t % grid.row_blocks) * block;
      const int64_t rows = std::min(block, m - m0), rows_pad = int8::round_up(rows, kRowAlign);
      if (direct && m0 + rows_pad <= m) {
        run(m0, rows, grid.panel_begin(g), grid.panel_begin(g + 1), PlainRows{xq + m0 * c, c, k4});
        continue;
      }
      // Only the bytes past k in each row and the rows past the last pixel need zeros.
      if (t_rows.size() < static_cast<size_t>(rows_pad * k4 + 16)) t_rows.resize(static_cast<size_t>(rows_pad * k4 + 16));
      if (narrow) im2col_rows_narrow(p, padded.get(), m0, rows, k4, t_rows.data());
      else im2col_rows(p, xq, zero_byte, m0, rows, k4, t_rows.data());
      if (k4 > k)
        for (int64_t r = 0; r < rows; ++r) fill_run(t_rows.data() + r * k4 + k, 0, k4 - k);
      std::memset(t_rows.data() + rows * k4, 0, (rows_pad - rows) * k4);
      run(m0, rows, grid.panel_begin(g), grid.panel_begin(g + 1), PlainRows{t_rows.data(), k4, k4});
    }
  });
}

void CpuBackend::int8_max_pool2d(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  const uint8_t* xp = x.data<uint8_t>();
  uint8_t* yp = y.data<uint8_t>();
  const int64_t c = p.c;
  parallel_for(p.n * p.oh, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t img = r / p.oh, oy = r % p.oh;
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        uint8_t* __restrict out = yp + (r * p.ow + ox) * c;
        std::memset(out, 0, c);  // below every byte a window can hold
        for (int64_t ky = 0; ky < p.kh; ++ky) {
          const int64_t iy = oy * p.stride_h - p.pad_h + ky;
          if (iy < 0 || iy >= p.h) continue;
          for (int64_t kx = 0; kx < p.kw; ++kx) {
            const int64_t ix = ox * p.stride_w - p.pad_w + kx;
            if (ix < 0 || ix >= p.w) continue;
            const uint8_t* __restrict in = xp + ((img * p.h + iy) * p.w + ix) * c;
            for (int64_t ch = 0; ch < c; ++ch) out[ch] = std::max(out[ch], in[ch]);
          }
        }
      }
    }
  });
}

}  // namespace shrink::cpu
