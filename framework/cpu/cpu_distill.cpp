// CPU kernels of the distillation losses (Backend::distill_loss): the reference the CUDA kernels in
// cuda/kernels/distill.cuh are tested against. One row at a time, each row read from memory once
// (its passes after the first hit the cache), sums in double.
#include <cmath>

#include "framework/core/parallel.h"
#include "framework/cpu/cpu_backend.h"

namespace shrink::cpu {

namespace {

// KL(pt || ps) of one row with p = softmax(x / T), and its gradient (ps - pt) / T. The log
// probabilities come from the max-shifted logits (stable at logits of +-80 and beyond); a teacher
// probability that underflows to 0 contributes 0 (torch's xlogy convention).
double kl_row(const float* s, const float* t, float* g, int64_t n, float temperature) {
  float ms = -INFINITY, mt = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    ms = std::max(ms, s[j] / temperature);
    mt = std::max(mt, t[j] / temperature);
  }
  double ss = 0, st = 0;
  for (int64_t j = 0; j < n; ++j) {
    ss += std::exp(static_cast<double>(s[j] / temperature - ms));
    st += std::exp(static_cast<double>(t[j] / temperature - mt));
  }
  const double lss = std::log(ss), lst = std::log(st);
  double loss = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double log_ps = s[j] / temperature - ms - lss, log_pt = t[j] / temperature - mt - lst;
    const double pt = std::exp(log_pt), ps = std::exp(log_ps);
    if (pt > 0) loss += pt * (log_pt - log_ps);
    g[j] = static_cast<float>((ps - pt) / temperature);
  }
  return loss;
}

double mse_row(const float* s, const float* t, float* g, int64_t n) {
  double loss = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float d = s[j] - t[j];
    loss += static_cast<double>(d) * d;
    g[j] = 2.f * d;
  }
  return loss;
}

}  // namespace

void CpuBackend::distill_loss(DistillLoss kind, const Tensor& s, const Tensor& t, int64_t rows, int64_t n,
                              float temperature, Tensor& loss, Tensor& grad) {
  const float* sp = s.data<float>();
  const float* tp = t.data<float>();
  float* lp = loss.data<float>();
  float* gp = grad.data<float>();
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r * n;
      lp[r] = static_cast<float>(kind == DistillLoss::Kl ? kl_row(sp + o, tp + o, gp + o, n, temperature)
                                                         : mse_row(sp + o, tp + o, gp + o, n));
    }
  });
}

}  // namespace shrink::cpu
