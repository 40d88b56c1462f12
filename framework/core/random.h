// Seeded random numbers whose sequence is fixed by the C++ standard (mt19937_64) and our own
// float/normal conversions, so a seed gives the same values on every platform.
#pragma once
#include <cstdint>
#include <random>
#include <string>

#include "framework/core/tensor.h"

namespace shrink {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : engine_(seed) {}
  void seed(uint64_t s) { engine_.seed(s); }
  uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 24 bits of precision.
  float uniform() { return static_cast<float>(engine_() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  float normal();  // Box-Muller, standard normal
  int64_t randint(int64_t n) { return static_cast<int64_t>(engine_() % static_cast<uint64_t>(n)); }
  // The whole state as text (the engine's standard text form and the spare normal), so that a
  // checkpoint can put a stream back exactly where it was.
  std::string state() const;
  void set_state(const std::string& state);  // throws on text state() did not produce

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  float spare_ = 0.f;
};

// The process-wide default generator (seed with manual_seed).
Generator& default_generator();
void manual_seed(uint64_t seed);

Tensor randn(const Shape& shape, Generator& gen = default_generator());
Tensor rand(const Shape& shape, Generator& gen = default_generator());  // uniform [0,1)
Tensor uniform(const Shape& shape, float lo, float hi, Generator& gen = default_generator());

}  // namespace shrink
