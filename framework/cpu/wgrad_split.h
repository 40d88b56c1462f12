// How a convolution's weight gradient spreads over the threads with bounded memory. Each image
// chunk accumulates a partial of the whole weight (summed in chunk order afterwards, so results
// are reproducible); a partial per thread would be 64 x 9.4 MB for a 512x512 3x3 layer on 64
// threads. So at most kWgradPartialBytes of partials exist: `chunks` image chunks, and when
// threads remain, each chunk's output channels split into `slices` that threads fill side by side
// (each re-reading its chunk's images; every partial element still has one writer, in image
// order).
#pragma once
#include <algorithm>
#include <cstdint>

namespace shrink::cpu {

constexpr int64_t kWgradPartialBytes = int64_t{32} << 20;

struct WgradSplit {
  int64_t chunks = 1, slices = 1;
};

// threads >= 1, images >= 1; oc_blocks: how many pieces the output channels can split into.
inline WgradSplit wgrad_split(int64_t threads, int64_t images, int64_t partial_bytes, int64_t oc_blocks) {
  const int64_t most = std::max<int64_t>(1, kWgradPartialBytes / std::max<int64_t>(partial_bytes, 1));
  WgradSplit best;
  if (std::min(threads, images) <= most) {
    best.chunks = std::min(threads, images);  // the usual case: a partial per thread
    return best;
  }
  // Most threads busy; among equals, fewer slices (less re-reading).
  for (int64_t c = 1; c <= std::min(most, images); ++c) {
    const int64_t s = std::min(threads / c, std::max<int64_t>(oc_blocks, 1));
    if (c * s > best.chunks * best.slices || (c * s == best.chunks * best.slices && s < best.slices))
      best = {c, s};
  }
  return best;
}

// Slice `s` of `slices` over [0, n) in units of `unit` (the last slice takes the rest).
inline void slice_range(int64_t n, int64_t unit, int64_t s, int64_t slices, int64_t& begin, int64_t& end) {
  const int64_t units = (n + unit - 1) / unit;
  begin = std::min(n, units * s / slices * unit);
  end = std::min(n, units * (s + 1) / slices * unit);
}

}  // namespace shrink::cpu
