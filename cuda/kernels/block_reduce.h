// Block-wide reductions shared by the row kernels (softmax, layer norm, batch norm): a warp
// shuffle tree, then thread 0 folds the per-warp partials in warp order. The order of additions
// depends only on blockDim and the data, never on scheduling, so results are reproducible run to
// run (unlike atomics).
//
// Contract: blockDim.x is a multiple of 32 (every launcher uses 32..256), the block is 1-D, every
// thread of the block calls (the helpers contain barriers), and `scratch` is a shared array of at
// least kBlockScratch floats declared once in the kernel — a __shared__ declared inside a device
// function called in a loop would be one allocation on a device but a new one per call under the
// emulator, so the kernel owns it.
#pragma once
#include "cuda/kernel_api.h"

namespace shrink::kern {

constexpr int kBlockScratch = 33;  // one partial per warp (<= 32 warps) + the broadcast slot

// Rounds n up to a multiple of the warp size within [32, cap]: small rows get small blocks so a
// 10-element row does not keep 256 threads idle.
inline unsigned row_threads(int64_t n, unsigned cap = 256) {
  int64_t t = (n + kWarpSize - 1) / kWarpSize * kWarpSize;
  if (t < kWarpSize) t = kWarpSize;
  if (t > cap) t = cap;
  return static_cast<unsigned>(t);
}

// The sum of v over the block, returned to every thread. No barrier is needed after the read of
// scratch[32]: the next call writes scratch[32] only after its first barrier, which every thread
// reaches after having read it.
SHRINK_DEVICE float block_sum(float v, float* scratch) {
  // Only lane 0's value is used; lanes whose source is past the warp add garbage that never
  // reaches lane 0 (lane 0 only reads lanes < 32 at every step).
  for (unsigned d = 16; d > 0; d >>= 1) v += SHRINK_SHFL_DOWN(v, d);
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  if (lane == 0) scratch[warp] = v;
  SHRINK_SYNCTHREADS();
  if (threadIdx.x == 0) {
    float acc = scratch[0];
    for (unsigned w = 1; w < blockDim.x / kWarpSize; ++w) acc += scratch[w];
    scratch[32] = acc;
  }
  SHRINK_SYNCTHREADS();
  return scratch[32];
}

// Same as std::max(a, b) (a < b ? b : a): a NaN b is ignored, which is what the CPU softmax
// relies on for its running maximum.
SHRINK_DEVICE float max_ignoring_nan(float a, float b) { return a < b ? b : a; }

// The maximum over the block (NaN operands ignored as in max_ignoring_nan), to every thread.
// A butterfly is fine here: max is exact, so every lane's order gives the same answer.
SHRINK_DEVICE float block_max(float v, float* scratch) {
  for (unsigned m = 16; m > 0; m >>= 1) v = max_ignoring_nan(v, SHRINK_SHFL_XOR(v, m));
  const unsigned warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  if (lane == 0) scratch[warp] = v;
  SHRINK_SYNCTHREADS();
  if (threadIdx.x == 0) {
    float acc = scratch[0];
    for (unsigned w = 1; w < blockDim.x / kWarpSize; ++w) acc = max_ignoring_nan(acc, scratch[w]);
    scratch[32] = acc;
  }
  SHRINK_SYNCTHREADS();
  return scratch[32];
}

}  // namespace shrink::kern
