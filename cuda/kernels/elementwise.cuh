// Elementwise kernels: fill (float and integer dtypes), unary ops and their gradients,
// broadcasting binary ops, expand, where, permute and block copies. Each host launcher takes raw
// device pointers; the CPU reference is the matching CpuBackend kernel
// (framework/cpu/cpu_elementwise.cpp), and both use the scalar formulas of
// framework/core/scalar_ops.h.
#pragma once
#include "cuda/launch.h"
#include "cuda/kernels/indexing.h"
#include "framework/core/scalar_ops.h"

namespace shrink::kern {

SHRINK_DEVICE void offsets(const StridedIndex& s, int64_t i, int64_t& oa, int64_t& ob) {
  oa = 0;
  ob = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    int64_t idx = i % s.shape[d];
    i /= s.shape[d];
    oa += idx * s.a[d];
    ob += idx * s.b[d];
  }
}

SHRINK_GLOBAL void fill_kernel(float* out, int64_t n, float value) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    out[i] = value;
}

// fill for the integer dtypes (Tensor::zeros of an index tensor, ...): the CPU's
// static_cast<T>(value), done once on the host by the launcher.
template <typename T>
SHRINK_GLOBAL void fill_typed_kernel(T* out, int64_t n, T value) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    out[i] = value;
}

template <typename S, typename D>
SHRINK_GLOBAL void convert_kernel(const S* in, D* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    out[i] = static_cast<D>(in[i]);
}

// A plain copy: the bandwidth yardstick of bench_kernels.
SHRINK_GLOBAL void copy_kernel(const float* in, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    out[i] = in[i];
}

SHRINK_GLOBAL void unary_kernel(UnaryOp op, const float* x, float* y, int64_t n, float p0,
                                float p1) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    y[i] = scalar::unary_value(op, x[i], p0, p1);
}

SHRINK_GLOBAL void unary_backward_kernel(UnaryOp op, const float* x, const float* y,
                                         const float* gy, float* gx, int64_t n, float p0,
                                         float p1) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    gx[i] = scalar::unary_grad(op, x ? x[i] : 0.f, y ? y[i] : 0.f, gy[i], p0, p1);
}

SHRINK_GLOBAL void binary_kernel(BinaryOp op, const float* a, const float* b, float* out,
                                 int64_t n, StridedIndex s) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t oa, ob;
    offsets(s, i, oa, ob);
    out[i] = scalar::binary_value(op, a[oa], b[ob]);
  }
}

// out[i] = x[broadcast offset of i]; elements of `esize` bytes copied as bytes.
SHRINK_GLOBAL void expand_kernel(const unsigned char* x, unsigned char* out, int64_t n,
                                 int esize, StridedIndex s) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t ox, unused;
    offsets(s, i, ox, unused);
    for (int k = 0; k < esize; ++k) out[i * esize + k] = x[ox * esize + k];
  }
}

SHRINK_GLOBAL void where_kernel(const float* cond, const float* a, const float* b, float* out,
                                int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    out[i] = cond[i] != 0.f ? a[i] : b[i];
}

// Reduces a broadcast gradient: thread per output element, summing the gradient elements that
// map to it in row-major order (the CPU's order), so results match the CPU closely.
SHRINK_GLOBAL void sum_to_kernel(const float* g, float* out, int64_t out_n, SumToIndex s) {
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < out_n;
       o += (int64_t)blockDim.x * gridDim.x) {
    int64_t base = 0, rem = o;
    for (int d = s.out_rank - 1; d >= 0; --d) {
      base += (rem % s.out_shape[d]) * s.out_to_grad[d];
      rem /= s.out_shape[d];
    }
    int64_t count = 1;
    for (int d = 0; d < s.nreduced; ++d) count *= s.red_shape[d];
    float acc = 0.f;
    for (int64_t r = 0; r < count; ++r) {
      int64_t off = 0, rr = r;
      for (int d = s.nreduced - 1; d >= 0; --d) {
        off += (rr % s.red_shape[d]) * s.red_stride[d];
        rr /= s.red_shape[d];
      }
      acc += g[base + off];
    }
    out[o] = acc;
  }
}

// out[o] = x[src offset]: s.shape is the output shape, s.a the source stride per output dim.
SHRINK_GLOBAL void permute_kernel(const unsigned char* x, unsigned char* out, int64_t n,
                                  int esize, StridedIndex s) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t ox, unused;
    offsets(s, i, ox, unused);
    for (int k = 0; k < esize; ++k) out[i * esize + k] = x[ox * esize + k];
  }
}

// Copies between src [outer, src_n, inner] and dst [outer, dst_n, inner] at offset + j*step.
SHRINK_GLOBAL void copy_block_kernel(unsigned char* src, unsigned char* dst, int64_t outer,
                                     int64_t src_n, int64_t inner, int64_t dst_n, int64_t offset,
                                     int64_t step, int esize, bool to_src) {
  const int64_t total = outer * src_n * inner;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t in = i % inner, j = (i / inner) % src_n, o = i / (inner * src_n);
    int64_t d = (o * dst_n + offset + j * step) * inner + in;
    for (int k = 0; k < esize; ++k) {
      if (to_src)
        src[i * esize + k] = dst[d * esize + k];
      else
        dst[d * esize + k] = src[i * esize + k];
    }
  }
}

// ---- host launchers ----
constexpr unsigned kThreads = 256;

inline void fill(float* out, int64_t n, float value) {
  if (n > 0) SHRINK_LAUNCH(fill_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, out, n, value);
}
template <typename T>
void fill_as(T* out, int64_t n, float value) {
  if (n > 0)
    SHRINK_LAUNCH((fill_typed_kernel<T>), cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, out, n,
                  static_cast<T>(value));
}
template <typename S, typename D>
void convert(const S* in, D* out, int64_t n) {
  if (n > 0) SHRINK_LAUNCH((convert_kernel<S, D>), cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, in, out, n);
}
inline void copy(const float* in, float* out, int64_t n) {
  if (n > 0) SHRINK_LAUNCH(copy_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, in, out, n);
}
inline void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  if (n > 0) SHRINK_LAUNCH(unary_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, op, x, y, n, p0, p1);
}
inline void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                           int64_t n, float p0, float p1) {
  if (n > 0)
    SHRINK_LAUNCH(unary_backward_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, op, x, y,
                  gy, gx, n, p0, p1);
}
inline void binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n,
                   const StridedIndex& s) {
  if (n > 0) SHRINK_LAUNCH(binary_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, op, a, b, out, n, s);
}
inline void expand(const void* x, void* out, int64_t n, int esize, const StridedIndex& s) {
  if (n > 0)
    SHRINK_LAUNCH(expand_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0,
                  static_cast<const unsigned char*>(x), static_cast<unsigned char*>(out), n, esize, s);
}
inline void where(const float* c, const float* a, const float* b, float* out, int64_t n) {
  if (n > 0) SHRINK_LAUNCH(where_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0, c, a, b, out, n);
}
inline void sum_to(const float* g, float* out, int64_t out_n, const SumToIndex& s) {
  if (out_n > 0) SHRINK_LAUNCH(sum_to_kernel, cuda::blocks_for(out_n, kThreads), cuda::threads_1d(kThreads), 0, g, out, out_n, s);
}
inline void permute(const void* x, void* out, int64_t n, int esize, const StridedIndex& s) {
  if (n > 0)
    SHRINK_LAUNCH(permute_kernel, cuda::blocks_for(n, kThreads), cuda::threads_1d(kThreads), 0,
                  static_cast<const unsigned char*>(x), static_cast<unsigned char*>(out), n, esize, s);
}
inline void copy_block(void* src, void* dst, int64_t outer, int64_t src_n, int64_t inner,
                       int64_t dst_n, int64_t offset, int64_t step, int esize, bool to_src) {
  const int64_t total = outer * src_n * inner;
  if (total > 0)
    SHRINK_LAUNCH(copy_block_kernel, cuda::blocks_for(total, kThreads), cuda::threads_1d(kThreads), 0,
                  static_cast<unsigned char*>(src), static_cast<unsigned char*>(dst), outer, src_n,
                  inner, dst_n, offset, step, esize, to_src);
}

}  // namespace shrink::kern
