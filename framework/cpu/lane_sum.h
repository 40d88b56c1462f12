// Float reductions that vectorise. GCC keeps `s += p[i]` scalar, one add per element behind the
// previous one (reassociating would change the result); these sum in 16 fixed lanes and add the
// lanes pairwise at the end. The order is fixed, so the result is reproducible, and it is
// usually closer to the exact sum than one running total.
#pragma once
#include <cstdint>

namespace shrink::cpu {

// Sum of term(i) for i in [0, n), accumulated in Acc.
template <typename Acc = float, typename Term>
inline Acc lane_sum(int64_t n, Term term) {
  constexpr int kLanes = 16;
  Acc acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  for (int l = 0; i + l < n; ++l) acc[l] += term(i + l);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  return acc[0];
}

// The sums of a(i) and of b(i) for i in [0, n) in one loop, with lane_sum's lane order and
// final reduction (so its results wherever the terms round alike): for terms that share work
// (a mask, a load).
template <typename Acc = float, typename Terms>
inline void lane_sum2(int64_t n, Terms terms, Acc& sum_a, Acc& sum_b) {
  constexpr int kLanes = 16;
  Acc a[kLanes] = {}, b[kLanes] = {};
  auto add = [&](int l, int64_t i) {
    const auto [ta, tb] = terms(i);
    a[l] += ta;
    b[l] += tb;
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) add(l, i + l);
  for (int l = 0; i + l < n; ++l) add(l, i + l);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) {
      a[l] += a[l + width];
      b[l] += b[l + width];
    }
  sum_a = a[0];
  sum_b = b[0];
}

// Whether p[0, n) holds a NaN. The marks are float lanes (a compare and a blend per vector): with
// an int accumulator (`nan |= v != v`) GCC 12 leaves the loop scalar.
inline bool any_nan(const float* __restrict p, int64_t n) {
  constexpr int kLanes = 16;
  float mark[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) mark[l] = p[i + l] != p[i + l] ? 1.f : mark[l];
  bool any = false;
  for (; i < n; ++i) any = any || p[i] != p[i];
  for (int l = 0; l < kLanes; ++l) any = any || mark[l] != 0.f;
  return any;
}

}  // namespace shrink::cpu
