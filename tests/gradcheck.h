// Central-difference gradient checks for tests. The loss is sum(w * f(x)) with fixed random
// weights w, accumulated in double so fp32 round-off in the loss itself stays far below the
// tolerances. Tolerance rationale: f is evaluated in fp32 (relative error ~1e-7 per value);
// with eps = 1e-2 the difference quotient carries round-off ~1e-5 * |loss| and truncation
// error O(eps^2 * f''') ~ 1e-4, so |analytic - numeric| <= atol + rtol * |numeric| with
// atol = 2e-3, rtol = 2e-2 fails only on a wrong gradient.
#pragma once
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "framework/shrink.h"

namespace shrink::testing {

struct GradCheckOptions {
  float eps = 1e-2f;
  double atol = 2e-3;
  double rtol = 2e-2;
};

inline double weighted_sum(const Tensor& out, const std::vector<float>& w) {
  std::vector<float> v = out.to_vector();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * w[i];
  return s;
}

inline void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, GradCheckOptions opt = {},
                            uint64_t seed = 1234) {
  for (auto& t : inputs) {
    t.set_requires_grad(true);
    t.zero_grad();  // inputs may be reused across checks
  }
  Tensor out = f(inputs);
  Generator gen(seed);
  std::vector<float> w(out.numel());
  for (auto& x : w) x = gen.uniform(-1.f, 1.f);
  Tensor wt = Tensor::from_vector(w, out.shape());
  Tensor loss = sum(mul(out, wt));
  loss.backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    Tensor g = x.grad();
    BOOST_REQUIRE_MESSAGE(g.defined() || x.numel() == 0, "input " << k << " got no gradient");
    std::vector<float> analytic = g.defined() ? g.to_vector() : std::vector<float>();
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      float orig = p[i];
      double lp, lm;
      {
        NoGradGuard ng;
        p[i] = orig + opt.eps;
        lp = weighted_sum(f(inputs), w);
        p[i] = orig - opt.eps;
        lm = weighted_sum(f(inputs), w);
        p[i] = orig;
      }
      double numeric = (lp - lm) / (2.0 * opt.eps);
      double err = std::fabs(numeric - analytic[i]);
      BOOST_CHECK_MESSAGE(err <= opt.atol + opt.rtol * std::fabs(numeric),
                          "input " << k << " element " << i << ": analytic " << analytic[i]
                                   << " numeric " << numeric);
    }
  }
}

// Random tensor whose values stay at least `margin` away from the given kinks (e.g. 0 for relu).
inline Tensor randn_away_from(const Shape& shape, std::vector<float> kinks, float margin,
                              uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v;
    bool ok;
    do {
      v = gen.normal();
      ok = true;
      for (float k : kinks) ok &= std::fabs(v - k) > margin;
    } while (!ok);
    p[i] = v;
  }
  return t;
}

inline Tensor seeded_randn(const Shape& shape, uint64_t seed, float scale = 1.f) {
  Generator gen(seed);
  return mul(randn(shape, gen), scale);
}

inline void check_close(const std::vector<float>& got, const std::vector<float>& want,
                        double atol, const char* what) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    BOOST_CHECK_MESSAGE(std::fabs(got[i] - want[i]) <= atol,
                        what << "[" << i << "]: got " << got[i] << " want " << want[i]);
}

}  // namespace shrink::testing
