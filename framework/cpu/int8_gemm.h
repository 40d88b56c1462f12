// The int8 GEMM micro-kernel of integer inference (backend.h Int8Layer): a tile of
// C[kMR rows][kNR columns] = sum_k A[row][k] * B[k][col] with unsigned bytes A, signed bytes B and
// exact 32-bit sums — AVX-512 VNNI's vpdpbusd where the CPU has it, plain loops elsewhere (the
// same sums: products are at most 255 * 128 and a group of four cannot overflow).
//
// Packed B (pack_b): the weight matrix w [n][k] in panels of kNR columns; within a panel, for each
// group of four k, kNR columns of four consecutive bytes — one 64-byte vector per 16 columns, the
// operand vpdpbusd takes. k is zero-padded to a multiple of 4 and n to a multiple of kNR.
#pragma once
#include <cstdint>

namespace shrink::cpu::int8 {

constexpr int kMR = 14;  // rows per tile: 14 x 2 accumulators + 2 weight vectors + 1 broadcast
constexpr int kNR = 32;  // columns per tile (two vectors of 16 int32)
// A narrow tile (a panel's first 16 columns, for layers of at most 16 outputs or a panel's tail):
// 28 rows x 1 accumulator, so that half the panel is not computed for nothing.
constexpr int kMRNarrow = 28;
constexpr int kNRNarrow = 16;
// Row blocks are padded to a multiple of both tile heights.
constexpr int kRowAlign = 28;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline int64_t padded_k(int64_t k) { return round_up(k, 4); }
inline int64_t packed_bytes(int64_t n, int64_t k) { return round_up(n, kNR) * padded_k(k); }

// w: [n][k] row-major; out: packed_bytes(n, k) bytes.
void pack_b(const int8_t* w, int64_t n, int64_t k, int8_t* out);

// A tile's rows of A, read tap by tap: for tap t, row r's bytes rows + tap_offset[t] + r * lda
// + [0, tap_k4) meet k-range [t * tap_k4, (t + 1) * tap_k4) of the panel. One tap of offset 0 and
// length padded_k(k) is a plain matrix of rows at stride lda (im2col rows, a Linear's input); a
// convolution's kh * kw taps over a padded NHWC image are its implicit GEMM (no im2col copy).
// Every row of the tile height must be readable.
struct TileA {
  const uint8_t* rows;
  int64_t lda;
  const int64_t* tap_offset;
  int taps;
  int64_t tap_k4;  // a multiple of 4
};

// One tile of kMR rows times panel `b` (packed + panel * kNR * padded_k(k)) into c[r * kNR + col].
void tile(const TileA& a, const int8_t* b, int32_t* c);
// The narrow tile: kMRNarrow rows, the panel's first kNRNarrow columns, into c[r * kNR + col].
void tile_narrow(const TileA& a, const int8_t* b, int32_t* c);

// Whether tile() uses vpdpbusd, and whether the byte conversions around it use AVX-512; tests
// force the portable loops everywhere to compare both with a reference.
bool uses_vnni();
bool uses_avx512();
void force_portable(bool on);

}  // namespace shrink::cpu::int8
