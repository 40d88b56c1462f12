#include "compression/quantization/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace shrink::compression {

RangeObserver parse_range_observer(const std::string& name) {
  if (name == "minmax") return RangeObserver::MinMax;
  if (name == "percentile") return RangeObserver::Percentile;
  if (name == "mse") return RangeObserver::Mse;
  if (name == "kl") return RangeObserver::Kl;
  fail("unknown observer '", name, "' (minmax | percentile | mse | kl)");
}

const char* to_string(RangeObserver o) {
  switch (o) {
    case RangeObserver::MinMax: return "minmax";
    case RangeObserver::Percentile: return "percentile";
    case RangeObserver::Mse: return "mse";
    case RangeObserver::Kl: return "kl";
  }
  return "?";
}

std::vector<float> AbsHistogram::block_abs_max(const Tensor& rows) {
  SHRINK_CHECK(rows.dim() == 2, "AbsHistogram: expected [blocks, n] values, got ", rows.shape());
  const int64_t nb = rows.size(0), n = rows.size(1);
  const std::vector<float> v = rows.to_vector();
  std::vector<float> out(static_cast<size_t>(nb), 0.f);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t i = 0; i < n; ++i)
      if (std::isfinite(v[b * n + i])) out[b] = std::max(out[b], std::fabs(v[b * n + i]));
  return out;
}

void AbsHistogram::sum_across_ranks(dist::Communicator& comm) {
  if (comm.size() == 1) return;
  std::vector<int64_t> sizes;
  for (const auto& c : counts_) sizes.push_back(static_cast<int64_t>(c.size()));
  dist::check_identical(comm, "the calibration histogram's bins", sizes.data(),
                        static_cast<int64_t>(sizes.size() * sizeof(int64_t)));
  // Counts are whole numbers below 2^53: their double sums are exact, in any order.
  for (auto& c : counts_) comm.allreduce(c.data(), static_cast<int64_t>(c.size()), dist::ReduceOp::Sum);
}

void AbsHistogram::add(const Tensor& rows, const std::vector<float>* block_max) {
  SHRINK_CHECK(rows.dim() == 2, "AbsHistogram: expected [blocks, n] values, got ", rows.shape());
  const int64_t nb = rows.size(0), n = rows.size(1);
  if (counts_.empty()) {
    counts_.resize(nb);
    width_.assign(nb, 0.f);
  }
  SHRINK_CHECK(nb == blocks(), "AbsHistogram: ", nb, " blocks, expected ", blocks());
  SHRINK_CHECK(!block_max || static_cast<int64_t>(block_max->size()) == nb, "AbsHistogram: ",
               block_max ? block_max->size() : 0, " block maxima for ", nb, " blocks");
  const std::vector<float> v = rows.to_vector();
  const std::vector<float> local = block_max ? std::vector<float>() : block_abs_max(rows);
  for (int64_t b = 0; b < nb; ++b) {
    const float* x = v.data() + b * n;
    const float mx = block_max ? (*block_max)[b] : local[b];
    auto& c = counts_[b];
    if (width_[b] == 0.f) {
      if (mx == 0.f) {  // only zeros so far: remember them in bin 0 of a histogram to come
        c.resize(1);
        c[0] += static_cast<double>(n);
        continue;
      }
      width_[b] = std::max(mx / kBins, std::numeric_limits<float>::min());  // a subnormal max must not give 0
      c.resize(kBins, 0.0);
    }
    // Merge bin pairs until the new maximum fits in kMaxBins bins.
    while (static_cast<double>(mx) / width_[b] > static_cast<double>(kMaxBins)) {
      std::vector<double> merged((c.size() + 1) / 2, 0.0);
      for (size_t i = 0; i < c.size(); ++i) merged[i / 2] += c[i];
      c.swap(merged);
      width_[b] *= 2.f;
    }
    const float w = width_[b];
    const int64_t need = static_cast<int64_t>(std::ceil(static_cast<double>(mx) / w));
    if (need > static_cast<int64_t>(c.size())) c.resize(need, 0.0);
    const int64_t last = static_cast<int64_t>(c.size()) - 1;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) continue;
      c[std::min(last, static_cast<int64_t>(std::fabs(x[i]) / w))] += 1.0;
    }
  }
}

namespace {

double percentile_edge(const std::vector<double>& c, double p) {
  double total = 0;
  for (double v : c) total += v;
  const double target = total * p / 100.0;
  double cum = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    cum += c[i];
    if (cum >= target) return static_cast<double>(i + 1);
  }
  return static_cast<double>(c.size());
}

// Expected squared error of clipping at `edge` bins and rounding to `levels` steps.
double mse_at(const std::vector<double>& c, double edge, double levels) {
  const double step = edge / levels;
  double err = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i] == 0) continue;
    const double centre = static_cast<double>(i) + 0.5;
    const double q = std::min(std::nearbyint(centre / step), levels) * step;
    err += c[i] * (centre - q) * (centre - q);
  }
  return err;
}

double kl_at(const std::vector<double>& c, size_t edge, size_t levels) {
  std::vector<double> p(c.begin(), c.begin() + edge);
  for (size_t i = edge; i < c.size(); ++i) p[edge - 1] += c[i];  // outliers into the last bin
  std::vector<double> q(edge, 0.0);
  const double per = static_cast<double>(edge) / static_cast<double>(levels);
  for (size_t j = 0; j < levels; ++j) {
    const size_t lo = static_cast<size_t>(std::floor(j * per)), hi = std::max(lo + 1, static_cast<size_t>(std::floor((j + 1) * per)));
    double sum = 0;
    size_t nonzero = 0;
    for (size_t i = lo; i < hi && i < edge; ++i) {
      sum += c[i];  // without the folded outliers, as TensorRT
      nonzero += c[i] != 0;
    }
    for (size_t i = lo; i < hi && i < edge; ++i)
      if (c[i] != 0) q[i] = sum / static_cast<double>(nonzero);
  }
  double sp = 0, sq = 0;
  for (size_t i = 0; i < edge; ++i) {
    sp += p[i];
    sq += q[i];
  }
  if (sp == 0 || sq == 0) return std::numeric_limits<double>::infinity();
  double kl = 0;
  for (size_t i = 0; i < edge; ++i) {
    if (p[i] == 0) continue;
    if (q[i] == 0) return std::numeric_limits<double>::infinity();
    const double pi = p[i] / sp, qi = q[i] / sq;
    kl += pi * std::log(pi / qi);
  }
  return kl;
}

}  // namespace

std::vector<float> AbsHistogram::amax(RangeObserver observer, double percentile,
                                      const std::vector<double>& levels) const {
  SHRINK_CHECK(static_cast<int64_t>(levels.size()) == blocks(), "AbsHistogram::amax: ", levels.size(),
               " level counts for ", blocks(), " blocks");
  std::vector<float> out(counts_.size(), 0.f);
  for (size_t b = 0; b < counts_.size(); ++b) {
    const auto& c = counts_[b];
    if (width_[b] == 0.f) continue;  // only zeros: amax 0
    const size_t nbins = c.size();
    double edge = static_cast<double>(nbins);
    if (observer == RangeObserver::Percentile) {
      edge = percentile_edge(c, percentile);
    } else if (observer != RangeObserver::MinMax) {
      // Search the edges (KL: from `levels` bins up, since fewer bins cannot be merged into the
      // levels; MSE: from 1) on a grid of at most 128, then every edge around the best one.
      const size_t lv = std::max<size_t>(1, static_cast<size_t>(levels[b]));
      const size_t first = observer == RangeObserver::Kl ? std::min(nbins, lv) : 1;
      // KL: the zero bin takes bin 1's count (NVIDIA's entropy calibrator does the same), or a
      // ReLU's spike of exact zeros, which no merge of levels can spread, decides the clip alone.
      std::vector<double> kc;
      if (observer == RangeObserver::Kl) {
        kc = c;
        if (kc.size() > 1) kc[0] = kc[1];
      }
      auto cost = [&](size_t e) {
        return observer == RangeObserver::Mse ? mse_at(c, static_cast<double>(e), levels[b]) : kl_at(kc, e, lv);
      };
      const size_t stride = std::max<size_t>(1, (nbins - first) / 128);
      double best = std::numeric_limits<double>::infinity();
      size_t best_e = nbins;
      auto consider = [&](size_t e) {
        const double v = cost(e);
        if (v < best) {
          best = v;
          best_e = e;
        }
      };
      for (size_t e = first; e <= nbins; e += stride) consider(e);
      consider(nbins);
      const size_t lo = best_e > first + stride ? best_e - stride : first, hi = std::min(nbins, best_e + stride);
      for (size_t e = lo; e <= hi; ++e) consider(e);
      edge = static_cast<double>(best_e);
    }
    out[b] = static_cast<float>(edge * width_[b]);
  }
  return out;
}

}  // namespace shrink::compression
