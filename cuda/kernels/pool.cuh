// 2-D pooling over NCHW planes: max pool (value + flat index within the plane), average pool
// (count_include_pad as given) and adaptive average pool (PyTorch's start/end formula), forward
// and backward. CPU reference: CpuBackend::*_pool2d_* (framework/cpu/cpu_pool_norm.cpp).
//
// Forward: a thread per output element visits its window in the CPU's row-major order, so the
// results are bit-identical to the CPU (same float additions in the same order).
// Backward: a thread per *input* element gathers from the outputs whose window covers it, in
// ascending output order — the order in which the CPU's scatter loop adds into that element — so
// the gradient is deterministic (no atomics) and again matches the CPU bit for bit.
#pragma once
#include "cuda/launch.h"
#include "framework/core/backend.h"

namespace shrink::kern {

struct PoolWindow {
  int64_t i0, i1, j0, j1;  // rows [i0, i1) x cols [j0, j1), clipped to the input
  float div;               // the average's divisor
};

SHRINK_DEVICE int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
SHRINK_DEVICE int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

SHRINK_DEVICE PoolWindow max_window(const Pool2dParams& p, int64_t oi, int64_t oj) {
  const int64_t i = oi * p.stride_h - p.pad_h, j = oj * p.stride_w - p.pad_w;
  return {imax(i, 0), imin(i + p.kh, p.h), imax(j, 0), imin(j + p.kw, p.w), 1.f};
}

// The CPU's avg_window: the padded window is clipped to [-pad, size + pad) for the
// count_include_pad divisor, then to the input for the summation.
SHRINK_DEVICE PoolWindow avg_window(const Pool2dParams& p, int64_t oi, int64_t oj) {
  int64_t i0 = oi * p.stride_h - p.pad_h, j0 = oj * p.stride_w - p.pad_w;
  int64_t i1 = imin(i0 + p.kh, p.h + p.pad_h), j1 = imin(j0 + p.kw, p.w + p.pad_w);
  const int64_t padded = (i1 - i0) * (j1 - j0);
  i0 = imax(i0, 0);
  j0 = imax(j0, 0);
  i1 = imin(i1, p.h);
  j1 = imin(j1, p.w);
  const float div = static_cast<float>(p.count_include_pad ? padded : (i1 - i0) * (j1 - j0));
  return {i0, i1, j0, j1, div};
}

SHRINK_DEVICE PoolWindow adaptive_window(const Pool2dParams& p, int64_t oi, int64_t oj) {
  const int64_t i0 = (oi * p.h) / p.oh, i1 = ((oi + 1) * p.h + p.oh - 1) / p.oh;
  const int64_t j0 = (oj * p.w) / p.ow, j1 = ((oj + 1) * p.w + p.ow - 1) / p.ow;
  return {i0, i1, j0, j1, static_cast<float>((i1 - i0) * (j1 - j0))};
}

// Output rows [lo, hi) of a strided window (stride s, kernel k, padding pad, `outs` outputs)
// that cover input row i: o * s - pad <= i < o * s - pad + k. The same range serves max and
// average pooling (an average window's clip at size + pad never excludes a real input row).
SHRINK_DEVICE void covering(int64_t i, int64_t s, int64_t k, int64_t pad, int64_t outs,
                            int64_t& lo, int64_t& hi) {
  const int64_t t = i + pad - k;  // o * s > t
  lo = t < 0 ? 0 : t / s + 1;
  hi = imin((i + pad) / s + 1, outs);
}

// Adaptive windows: floor(o * size / outs) <= i < ceil((o + 1) * size / outs) holds for o in
// [floor(i * outs / size), ceil((i + 1) * outs / size)); the caller re-checks each candidate
// with adaptive_window, so the range only has to be a superset.
SHRINK_DEVICE void adaptive_covering(int64_t i, int64_t size, int64_t outs, int64_t& lo,
                                     int64_t& hi) {
  lo = (i * outs) / size;
  hi = imin(((i + 1) * outs + size - 1) / size, outs);
}

SHRINK_GLOBAL void max_pool2d_forward_kernel(Pool2dParams p, const float* x, float* y,
                                             int64_t* index) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total;
       o += (int64_t)blockDim.x * gridDim.x) {
    const int64_t oj = o % p.ow, oi = (o / p.ow) % p.oh, nc = o / (p.ow * p.oh);
    const float* plane = x + nc * p.h * p.w;
    const PoolWindow w = max_window(p, oi, oj);
    // PyTorch's rule, as the CPU: take v when v > best or v is NaN (so the last NaN wins), and
    // the first maximum in row-major window order wins ties.
    int64_t arg = w.i0 * p.w + w.j0;
    float best = plane[arg];
    for (int64_t i = w.i0; i < w.i1; ++i)
      for (int64_t j = w.j0; j < w.j1; ++j) {
        const float v = plane[i * p.w + j];
        if (v > best || v != v) {
          best = v;
          arg = i * p.w + j;
        }
      }
    y[o] = best;
    index[o] = arg;
  }
}

// gx[i, j] = sum of gy over the outputs whose recorded index is i * w + j. Indices come from
// max_pool2d_forward and so always lie in their output's window: looking only at the covering
// outputs finds every contribution.
SHRINK_GLOBAL void max_pool2d_backward_kernel(Pool2dParams p, const float* gy,
                                              const int64_t* index, float* gx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
       e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t j = e % p.w, i = (e / p.w) % p.h, nc = e / (p.w * p.h);
    int64_t oi0, oi1, oj0, oj1;
    covering(i, p.stride_h, p.kh, p.pad_h, p.oh, oi0, oi1);
    covering(j, p.stride_w, p.kw, p.pad_w, p.ow, oj0, oj1);
    const int64_t base = nc * p.oh * p.ow, flat = i * p.w + j;
    float acc = 0.f;
    for (int64_t oi = oi0; oi < oi1; ++oi)
      for (int64_t oj = oj0; oj < oj1; ++oj) {
        const int64_t o = base + oi * p.ow + oj;
        if (index[o] == flat) acc += gy[o];
      }
    gx[e] = acc;
  }
}

SHRINK_GLOBAL void avg_pool2d_forward_kernel(Pool2dParams p, const float* x, float* y,
                                             bool adaptive) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total;
       o += (int64_t)blockDim.x * gridDim.x) {
    const int64_t oj = o % p.ow, oi = (o / p.ow) % p.oh, nc = o / (p.ow * p.oh);
    const float* plane = x + nc * p.h * p.w;
    const PoolWindow w = adaptive ? adaptive_window(p, oi, oj) : avg_window(p, oi, oj);
    float s = 0.f;
    for (int64_t i = w.i0; i < w.i1; ++i)
      for (int64_t j = w.j0; j < w.j1; ++j) s += plane[i * p.w + j];
    y[o] = s / w.div;
  }
}

// gx[i, j] = sum over covering outputs of gy / divisor, added in ascending output order.
SHRINK_GLOBAL void avg_pool2d_backward_kernel(Pool2dParams p, const float* gy, float* gx,
                                              bool adaptive) {
  const int64_t total = p.n * p.c * p.h * p.w;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
       e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t j = e % p.w, i = (e / p.w) % p.h, nc = e / (p.w * p.h);
    int64_t oi0, oi1, oj0, oj1;
    if (adaptive) {
      adaptive_covering(i, p.h, p.oh, oi0, oi1);
      adaptive_covering(j, p.w, p.ow, oj0, oj1);
    } else {
      covering(i, p.stride_h, p.kh, p.pad_h, p.oh, oi0, oi1);
      covering(j, p.stride_w, p.kw, p.pad_w, p.ow, oj0, oj1);
    }
    const int64_t base = nc * p.oh * p.ow;
    float acc = 0.f;
    for (int64_t oi = oi0; oi < oi1; ++oi)
      for (int64_t oj = oj0; oj < oj1; ++oj) {
        const PoolWindow w = adaptive ? adaptive_window(p, oi, oj) : avg_window(p, oi, oj);
        if (i >= w.i0 && i < w.i1 && j >= w.j0 && j < w.j1)
          acc += gy[base + oi * p.ow + oj] / w.div;
      }
    gx[e] = acc;
  }
}

// ---- host launchers ----
constexpr unsigned kPoolThreads = 256;

inline void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y, int64_t* index) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  SHRINK_LAUNCH(max_pool2d_forward_kernel, cuda::blocks_for(total, kPoolThreads),
                cuda::threads_1d(kPoolThreads), 0, p, x, y, index);
}

inline void max_pool2d_backward(const Pool2dParams& p, const float* gy, const int64_t* index,
                                float* gx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  if (total == 0) return;
  SHRINK_LAUNCH(max_pool2d_backward_kernel, cuda::blocks_for(total, kPoolThreads),
                cuda::threads_1d(kPoolThreads), 0, p, gy, index, gx);
}

inline void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  SHRINK_LAUNCH(avg_pool2d_forward_kernel, cuda::blocks_for(total, kPoolThreads),
                cuda::threads_1d(kPoolThreads), 0, p, x, y, false);
}

inline void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  if (total == 0) return;
  SHRINK_LAUNCH(avg_pool2d_backward_kernel, cuda::blocks_for(total, kPoolThreads),
                cuda::threads_1d(kPoolThreads), 0, p, gy, gx, false);
}

// Uses p.n, p.c, p.h, p.w, p.oh, p.ow only.
inline void adaptive_avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  SHRINK_LAUNCH(avg_pool2d_forward_kernel, cuda::blocks_for(total, kPoolThreads),
                cuda::threads_1d(kPoolThreads), 0, p, x, y, true);
}

inline void adaptive_avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const int64_t total = p.n * p.c * p.h * p.w;
  if (total == 0) return;
  SHRINK_LAUNCH(avg_pool2d_backward_kernel, cuda::blocks_for(total, kPoolThreads),
                cuda::threads_1d(kPoolThreads), 0, p, gy, gx, true);
}

}  // namespace shrink::kern
