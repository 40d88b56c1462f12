// Per-thread scratch buffers that only grow: convolution needs large temporaries on every call,
// and re-allocating (and page-faulting) them each time costs more than the kernels themselves.
#pragma once
#include <cstddef>
#include <vector>

namespace shrink::cpu {

// Each caller uses its own slot numbers; a slot's contents are only valid until its next use.
enum ScratchSlot : int { kScratchCol, kScratchOut, kScratchIn, kScratchGrad, kScratchSlots };

inline float* scratch(ScratchSlot slot, size_t n) {
  thread_local std::vector<float> buffers[kScratchSlots];
  std::vector<float>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

}  // namespace shrink::cpu
