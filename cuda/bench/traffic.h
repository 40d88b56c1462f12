// Napkin math for bench_kernels: the bytes each kernel must move at least (every input read
// once, every output written once, 4 bytes per float, 8 per index). Achieved GB/s = bytes /
// time; a figure above the copy kernel's means the formula is wrong. Unit-tested in
// tests/cuda/test_traffic.cpp.
#pragma once
#include <cstdint>

namespace shrink::bench {

constexpr int64_t kF = 4;  // bytes per float

inline int64_t bytes_copy(int64_t n) { return 2 * kF * n; }          // read x, write y
inline int64_t bytes_fill(int64_t n) { return kF * n; }              // write y
inline int64_t bytes_unary(int64_t n) { return 2 * kF * n; }         // read x, write y
// relu backward reads x and gy, writes gx.
inline int64_t bytes_unary_backward(int64_t n) { return 3 * kF * n; }
// out = a op b: a and out have n elements, b has nb (broadcast operands are read once).
inline int64_t bytes_binary(int64_t n, int64_t nb) { return kF * (2 * n + nb); }
// Masking is a binary multiply by a mask of nm elements.
inline int64_t bytes_mask(int64_t n, int64_t nm) { return bytes_binary(n, nm); }
// Fake quantization reads x and per-channel (s, z) of nc channels, writes y.
inline int64_t bytes_fake_quant(int64_t n, int64_t nc) { return kF * (2 * n + 2 * nc); }
// Its backward reads x, gy and (s, z), writes gx.
inline int64_t bytes_fake_quant_backward(int64_t n, int64_t nc) { return kF * (3 * n + 2 * nc); }
// Row reduction: read rows * n, write rows.
inline int64_t bytes_reduce_rows(int64_t rows, int64_t n) { return kF * (rows * n + rows); }
// Softmax over rows: read x, write y (the passes over a row hit cache, not memory).
inline int64_t bytes_softmax(int64_t rows, int64_t n) { return 2 * kF * rows * n; }
// SGD with momentum: read/write param and buffer, read grad.
inline int64_t bytes_sgd_momentum(int64_t n) { return 5 * kF * n; }
// Adam: read/write param, m, v; read grad.
inline int64_t bytes_adam(int64_t n) { return 7 * kF * n; }
// Fused KL / MSE distillation of two [rows, n] tensors (distill.cuh): read both, write the student
// gradient and a loss per row (the passes over a row hit cache, not memory).
inline int64_t bytes_distill(int64_t rows, int64_t n) { return kF * (3 * rows * n + rows); }

// Dense work.
inline double flops_gemm(int64_t m, int64_t n, int64_t k) { return 2.0 * m * n * k; }
inline double flops_conv2d(int64_t n, int64_t c, int64_t oc, int64_t oh, int64_t ow, int64_t kh,
                           int64_t kw, int64_t groups) {
  return 2.0 * n * oc * oh * ow * (c / groups) * kh * kw;
}

}  // namespace shrink::bench
