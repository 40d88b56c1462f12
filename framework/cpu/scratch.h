// Per-thread scratch buffers that only grow: convolution needs large temporaries on every call,
// and re-allocating (and page-faulting) them each time costs more than the kernels themselves.
#pragma once
#include <cstddef>
#include <vector>

namespace shrink::cpu {

// Buffers live at once on one thread must use different slots: the next scratch() call on a slot
// may reallocate it, invalidating the pointer an earlier call returned. (The im2col and direct
// convolutions share slots; neither runs inside the other.)
enum ScratchSlot : int { kScratchCol, kScratchOut, kScratchIn, kScratchGrad, kScratchSlots };

inline float* scratch(ScratchSlot slot, size_t n) {
  thread_local std::vector<float> buffers[kScratchSlots];
  std::vector<float>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

}  // namespace shrink::cpu
