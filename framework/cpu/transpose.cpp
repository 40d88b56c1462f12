// The 16x16 float transpose (transpose.h).
#include "framework/cpu/transpose.h"

#include <immintrin.h>

#define SHRINK_AVX512 __attribute__((target("avx512f")))

namespace shrink::cpu {

namespace {

// GCC 12's unpack and shuffle intrinsics start from _mm512_undefined_ps(), a self-initialised
// variable that -Wuninitialized reports at every use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// In-register transpose of a 16x16 block: r[i] holds row i on entry, column i on return.
// Three rounds of in-lane unpacks and 128-bit lane shuffles (see Intel's optimisation manual).
SHRINK_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  __m512 u[16];  // u[4m+q], 128-bit lane L: column 4L+q of rows 4m..4m+3
  for (int m = 0; m < 16; m += 4) {
    const __m512d a = _mm512_castps_pd(t[m]), b = _mm512_castps_pd(t[m + 1]);
    const __m512d c = _mm512_castps_pd(t[m + 2]), d = _mm512_castps_pd(t[m + 3]);
    u[m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int q = 0; q < 4; ++q) {  // 4x4 transpose of 128-bit lanes across u[q], u[4+q], ...
    const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
    r[q] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[4 + q] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[8 + q] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + q] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}

#pragma GCC diagnostic pop

__mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

}  // namespace

SHRINK_AVX512 void transpose_block(const float* src, int64_t src_ld, int64_t rows, int64_t cols,
                                   float* dst, int64_t dst_ld, int64_t out_lanes) {
  __m512 r[16];
  const __mmask16 col_mask = first_lanes(cols);
  for (int i = 0; i < 16; ++i)
    r[i] = i < rows ? _mm512_maskz_loadu_ps(col_mask, src + i * src_ld) : _mm512_setzero_ps();
  transpose16(r);
  const __mmask16 out_mask = first_lanes(out_lanes);
  for (int j = 0; j < cols; ++j) _mm512_mask_storeu_ps(dst + j * dst_ld, out_mask, r[j]);
}

}  // namespace shrink::cpu
