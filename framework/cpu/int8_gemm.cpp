#include "framework/cpu/int8_gemm.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>

namespace shrink::cpu::int8 {

namespace {

std::atomic<bool> g_force_portable{false};

#define SHRINK_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// R rows x V vectors of 16 columns, all accumulators in registers (14 x 2 or 28 x 1 of the 32).
// LDA > 0: a.lda is LDA (the caller checked), so row r's bytes are an immediate offset from one
// pointer; with a run-time lda GCC keeps a pointer per row, and 28 of them spill (a reload
// before every vpdpbusd), as in the float direct convolution.
template <int R, int V, int LDA = 0>
SHRINK_VNNI void tile_vnni(const TileA& a, const int8_t* b, int32_t* c) {
  __m512i acc[R][V];
#pragma GCC unroll 28
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_si512();
  const int64_t lda = LDA > 0 ? LDA : a.lda;
  for (int t = 0; t < a.taps; ++t) {
    const uint8_t* at = a.rows + a.tap_offset[t];
    const int8_t* bt = b + t * a.tap_k4 * kNR;
    for (int64_t kk = 0; kk < a.tap_k4; kk += 4) {
      __m512i bv[V];
      for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_si512(bt + kk * kNR + 64 * v);
#pragma GCC unroll 28
      for (int r = 0; r < R; ++r) {
        int32_t four;
        std::memcpy(&four, at + r * lda + kk, 4);
        const __m512i av = _mm512_set1_epi32(four);
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, bv[v]);
      }
    }
  }
#pragma GCC unroll 28
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_si512(c + r * kNR + 16 * v, acc[r][v]);
}

// rows x cols of the tile (cols from the panel's start), the same sums in plain loops.
void tile_portable(const TileA& a, const int8_t* b, int32_t* c, int rows, int cols) {
  for (int r = 0; r < rows; ++r) {
    int32_t* cr = c + r * kNR;
    for (int col = 0; col < cols; ++col) cr[col] = 0;
    for (int t = 0; t < a.taps; ++t) {
      const uint8_t* ar = a.rows + a.tap_offset[t] + r * a.lda;
      const int8_t* bt = b + t * a.tap_k4 * kNR;
      for (int64_t kk = 0; kk < a.tap_k4; kk += 4) {
        const int32_t a0 = ar[kk], a1 = ar[kk + 1], a2 = ar[kk + 2], a3 = ar[kk + 3];
        const int8_t* bk = bt + kk * kNR;
        for (int col = 0; col < cols; ++col)
          cr[col] += a0 * bk[col * 4] + a1 * bk[col * 4 + 1] + a2 * bk[col * 4 + 2] + a3 * bk[col * 4 + 3];
      }
    }
  }
}

// The tile for a.lda, with the row stride fixed at compile time where it is a common one.
template <int R, int V>
SHRINK_VNNI void tile_vnni_any(const TileA& a, const int8_t* b, int32_t* c) {
  switch (a.lda) {
    case 16: return tile_vnni<R, V, 16>(a, b, c);
    case 32: return tile_vnni<R, V, 32>(a, b, c);
    case 64: return tile_vnni<R, V, 64>(a, b, c);
    case 128: return tile_vnni<R, V, 128>(a, b, c);
    default: return tile_vnni<R, V>(a, b, c);
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

void tile(const TileA& a, const int8_t* b, int32_t* c) {
  if (uses_vnni()) return tile_vnni_any<kMR, kNR / 16>(a, b, c);
  tile_portable(a, b, c, kMR, kNR);
}

void tile_narrow(const TileA& a, const int8_t* b, int32_t* c) {
  if (uses_vnni()) return tile_vnni_any<kMRNarrow, kNRNarrow / 16>(a, b, c);
  tile_portable(a, b, c, kMRNarrow, kNRNarrow);
}

bool uses_vnni() { return cpu_has_vnni() && !g_force_portable.load(std::memory_order_relaxed); }
bool uses_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has && !g_force_portable.load(std::memory_order_relaxed);
}
void force_portable(bool on) { g_force_portable.store(on, std::memory_order_relaxed); }

}  // namespace shrink::cpu::int8
