#include "compression/pruning/smallest.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "framework/core/parallel.h"
#include "framework/core/scalar_ops.h"

namespace shrink::compression {

namespace {

constexpr int64_t kIndexSelectMax = int64_t{1} << 16;
constexpr int kMaxBits = 11;
// Radix passes from the top bit down: (shift, bits).
constexpr int kPasses[3][2] = {{21, 11}, {10, 11}, {0, 10}};

// An unsigned key whose order is ascending_before's order of values: -0 and +0 equal, every NaN
// after every number (equal keys are then ordered by index, as there).
inline uint32_t order_key(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  // Selects only, so that the passes over large metrics vectorise.
  uint32_t key = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  key = (u << 1) == 0 ? 0x80000000u : key;  // -0 as +0
  return v != v ? 0xffffffffu : key;
}

void mark_by_index(const float* v, int64_t n, int64_t k, float* mask) {
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  auto before = [v](int64_t a, int64_t b) { return scalar::ascending_before(v[a], a, v[b], b); };
  std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
  std::fill_n(mask, n, 1.f);
  for (int64_t j = 0; j < k; ++j) mask[idx[j]] = 0.f;
}

}  // namespace

void mark_smallest(const float* v, int64_t n, int64_t k, float* mask) {
  if (k <= 0 || k >= n) {
    std::fill_n(mask, n, k <= 0 ? 1.f : 0.f);
    return;
  }
  if (n < kIndexSelectMax) return mark_by_index(v, n, k, mask);

  const int chunks = std::max(1, num_threads());
  std::vector<std::vector<int64_t>> hist(chunks, std::vector<int64_t>(1 << kMaxBits));
  uint64_t prefix = 0;  // the bits of the k-th key found so far, above the current pass
  int64_t rest = k;     // the k-th key's rank among the keys sharing that prefix
  for (const auto& pass : kPasses) {
    const int shift = pass[0], bits = pass[1], above = shift + bits;
    const uint32_t bin_mask = (1u << bits) - 1;
    parallel_chunks(n, chunks, [&](int c, int64_t b, int64_t e) {
      int64_t* h = hist[c].data();
      std::fill_n(h, 1 << kMaxBits, 0);
      for (int64_t i = b; i < e; ++i) {
        const uint32_t key = order_key(v[i]);
        h[(key >> shift) & bin_mask] += (static_cast<uint64_t>(key) >> above) == prefix;
      }
    });
    uint32_t bin = 0;
    for (;; ++bin) {
      int64_t count = 0;
      for (int c = 0; c < chunks; ++c) count += hist[c][bin];
      if (rest <= count) break;
      rest -= count;
    }
    prefix = (prefix << bits) | bin;
  }
  const uint32_t kth = static_cast<uint32_t>(prefix);
  // `rest` of the keys equal to the k-th are pruned, the first in index order: chunk c's share
  // follows from the last pass's per-chunk count of that key.
  std::vector<int64_t> take(chunks);
  for (int c = 0; c < chunks; ++c) {
    take[c] = std::min(rest, hist[c][kth & ((1u << kPasses[2][1]) - 1)]);
    rest -= take[c];
  }
  parallel_chunks(n, chunks, [&](int c, int64_t b, int64_t e) {
    // The pruned keys equal to the k-th end at `last` (found before any position is written,
    // as mask may be v), so the writing pass is a plain vectorisable select.
    int64_t last = b - 1;
    for (int64_t i = b, t = take[c]; t > 0 && i < e; ++i)
      if (order_key(v[i]) == kth) last = i, --t;
    for (int64_t i = b; i < e; ++i) {
      const uint32_t key = order_key(v[i]);
      mask[i] = (key < kth || (key == kth && i <= last)) ? 0.f : 1.f;
    }
  });
}

}  // namespace shrink::compression
