#include "framework/cpu/int8_gemm.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>

namespace shrink::cpu::int8 {

namespace {

std::atomic<bool> g_force_portable{false};

#define SHRINK_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

SHRINK_VNNI void tile_vnni(const uint8_t* a, int64_t lda, const int8_t* b, int64_t k4, int32_t* c) {
  __m512i acc0[kMR], acc1[kMR];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  for (int64_t kk = 0; kk < k4; kk += 4) {
    const __m512i b0 = _mm512_loadu_si512(b + kk * kNR);
    const __m512i b1 = _mm512_loadu_si512(b + kk * kNR + 64);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; ++r) {
      int32_t four;
      std::memcpy(&four, a + r * lda + kk, 4);
      const __m512i av = _mm512_set1_epi32(four);
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
    }
  }
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) {
    _mm512_storeu_si512(c + r * kNR, acc0[r]);
    _mm512_storeu_si512(c + r * kNR + 16, acc1[r]);
  }
}

SHRINK_VNNI void tile_narrow_vnni(const uint8_t* a, int64_t lda, const int8_t* b, int64_t k4, int32_t* c) {
  __m512i acc[kMRNarrow];
#pragma GCC unroll 28
  for (int r = 0; r < kMRNarrow; ++r) acc[r] = _mm512_setzero_si512();
  for (int64_t kk = 0; kk < k4; kk += 4) {
    const __m512i b0 = _mm512_loadu_si512(b + kk * kNR);
#pragma GCC unroll 28
    for (int r = 0; r < kMRNarrow; ++r) {
      int32_t four;
      std::memcpy(&four, a + r * lda + kk, 4);
      acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(four), b0);
    }
  }
#pragma GCC unroll 28
  for (int r = 0; r < kMRNarrow; ++r) _mm512_storeu_si512(c + r * kNR, acc[r]);
}

// rows x cols of the tile (cols from the panel's start), the same sums in plain loops.
void tile_portable(const uint8_t* a, int64_t lda, const int8_t* b, int64_t k4, int32_t* c, int rows, int cols) {
  for (int r = 0; r < rows; ++r) {
    int32_t* cr = c + r * kNR;
    for (int col = 0; col < cols; ++col) cr[col] = 0;
    const uint8_t* ar = a + r * lda;
    for (int64_t kk = 0; kk < k4; kk += 4) {
      const int32_t a0 = ar[kk], a1 = ar[kk + 1], a2 = ar[kk + 2], a3 = ar[kk + 3];
      const int8_t* bk = b + kk * kNR;
      for (int col = 0; col < cols; ++col)
        cr[col] += a0 * bk[col * 4] + a1 * bk[col * 4 + 1] + a2 * bk[col * 4 + 2] + a3 * bk[col * 4 + 3];
    }
  }
}

bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}

}  // namespace

void pack_b(const int8_t* w, int64_t n, int64_t k, int8_t* out) {
  const int64_t k4 = padded_k(k), panels = round_up(n, kNR) / kNR;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t kg = 0; kg < k4; kg += 4)
      for (int col = 0; col < kNR; ++col)
        for (int t = 0; t < 4; ++t) {
          const int64_t row = p * kNR + col, kk = kg + t;
          *out++ = row < n && kk < k ? w[row * k + kk] : int8_t{0};
        }
}

void tile(const uint8_t* a, int64_t lda, const int8_t* b, int64_t k4, int32_t* c) {
  if (uses_vnni()) return tile_vnni(a, lda, b, k4, c);
  tile_portable(a, lda, b, k4, c, kMR, kNR);
}

void tile_narrow(const uint8_t* a, int64_t lda, const int8_t* b, int64_t k4, int32_t* c) {
  if (uses_vnni()) return tile_narrow_vnni(a, lda, b, k4, c);
  tile_portable(a, lda, b, k4, c, kMRNarrow, kNRNarrow);
}

bool uses_vnni() { return cpu_has_vnni() && !g_force_portable.load(std::memory_order_relaxed); }
bool uses_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has && !g_force_portable.load(std::memory_order_relaxed);
}
void force_portable(bool on) { g_force_portable.store(on, std::memory_order_relaxed); }

}  // namespace shrink::cpu::int8
