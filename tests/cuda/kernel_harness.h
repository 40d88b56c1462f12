// What the kernel test cases (kernel_cases.inc) need from the place they run: buffers that live
// where the kernels run (host memory under the emulator, device memory on a GPU) and the random
// inputs. The same cases are compiled twice: as C++20 against the CPU emulator
// (tests/cuda/test_emulated.cpp) and by nvcc against a real device (cuda/tests/test_device.cu).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "framework/core/random.h"
#include "framework/core/tensor.h"

namespace shrink::kt {

// Sizes around the 256-thread block: empty, one element, one block, ragged, many blocks.
inline const std::vector<int64_t>& ragged_sizes() {
  static const std::vector<int64_t> s{0, 1, 31, 256, 257, 1000, 4099};
  return s;
}

inline std::vector<float> random_floats(int64_t n, uint64_t seed, float scale = 1.f) {
  Generator g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = g.normal() * scale;
  return v;
}

inline Tensor as_tensor(const std::vector<float>& v, const Shape& s) { return Tensor::from_vector(v, s); }

// |a - b| <= atol + rtol * |b| for every element, with NaN matching NaN and equal values
// (infinities included: inf - inf is NaN) matching each other.
inline bool close(const std::vector<float>& a, const std::vector<float>& b, double atol,
                  double rtol, std::string* why) {
  if (a.size() != b.size()) {
    *why = "sizes differ";
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if ((std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i]) continue;
    if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(b[i]))) {
      *why = "element " + std::to_string(i) + ": kernel " + std::to_string(a[i]) + " vs CPU " +
             std::to_string(b[i]);
      return false;
    }
  }
  return true;
}

}  // namespace shrink::kt
