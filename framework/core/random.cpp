#include "framework/core/random.h"

#include <cmath>
#include <cstring>
#include <sstream>

namespace shrink {

float Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1, u2;
  do {
    u1 = static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
  } while (u1 <= 0.0);
  u2 = static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
  double r = std::sqrt(-2.0 * std::log(u1));
  double t = 2.0 * M_PI * u2;
  spare_ = static_cast<float>(r * std::sin(t));
  has_spare_ = true;
  return static_cast<float>(r * std::cos(t));
}

std::string Generator::state() const {
  std::ostringstream out;
  uint32_t spare_bits;
  std::memcpy(&spare_bits, &spare_, sizeof spare_bits);
  out << engine_ << ' ' << (has_spare_ ? 1 : 0) << ' ' << spare_bits;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 engine;
  int has_spare = 0;
  uint32_t spare_bits = 0;
  in >> engine >> has_spare >> spare_bits;
  SHRINK_CHECK(!in.fail() && (has_spare == 0 || has_spare == 1) && (in >> std::ws).eof(),
               "Generator::set_state: not a generator state (", state.size(), " characters)");
  engine_ = engine;
  has_spare_ = has_spare == 1;
  std::memcpy(&spare_, &spare_bits, sizeof spare_bits);
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().seed(seed); }

Tensor randn(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal();
  return t;
}

Tensor rand(const Shape& shape, Generator& gen) { return uniform(shape, 0.f, 1.f, gen); }

Tensor uniform(const Shape& shape, float lo, float hi, Generator& gen) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform(lo, hi);
  return t;
}

}  // namespace shrink
