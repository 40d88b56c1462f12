// CPU kernels: reductions along one dim, softmax, NLL, k-th value and top-k.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/core/parallel.h"
#include "framework/core/scalar_ops.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/lane_sum.h"

namespace shrink::cpu {

namespace {
// out[o][i] = sum (or mean) over j of term(x[o][j][i]), accumulated in double: exact enough that
// the order of terms hardly matters, and in an order that vectorises (lanes along contiguous i,
// or lane_sum's fixed lanes along j when inner is 1).
template <typename Term>
void sum_rows(const float* xp, int64_t outer, int64_t n, int64_t inner, double scale, Term term,
              float* out) {
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, 65536 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const float* __restrict p = xp + o * n;
        out[o] = static_cast<float>(lane_sum<double>(n, [p, term](int64_t j) { return term(p[j]); }) * scale);
      }
    });
    return;
  }
  constexpr int64_t kBlock = 256;  // columns summed together, their sums kept in registers/L1
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  parallel_for(outer * blocks, 1, [&](int64_t b, int64_t e) {
    double acc[kBlock];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * kBlock, len = std::min(kBlock, inner - i0);
      std::fill_n(acc, len, 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const float* __restrict p = xp + (o * n + j) * inner + i0;
        for (int64_t i = 0; i < len; ++i) acc[i] += term(p[i]);
      }
      float* __restrict q = out + o * inner + i0;
      for (int64_t i = 0; i < len; ++i) q[i] = static_cast<float>(acc[i] * scale);
    }
  });
}

void sum_rows(ReduceOp op, const float* xp, int64_t outer, int64_t n, int64_t inner, float* out) {
  const double scale = op == ReduceOp::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  switch (op) {
    case ReduceOp::SumAbs:
      return sum_rows(xp, outer, n, inner, scale, [](float v) { return static_cast<double>(std::fabs(v)); }, out);
    case ReduceOp::SumSquares:
      return sum_rows(xp, outer, n, inner, scale, [](float v) { return static_cast<double>(v) * v; }, out);
    default:
      return sum_rows(xp, outer, n, inner, scale, [](float v) { return static_cast<double>(v); }, out);
  }
}
}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                        Tensor& out, Tensor* index) {
  const float* xp = x.data<float>();
  float* op_ = out.data<float>();
  if (is_sum_reduction(op)) {
    sum_rows(op, xp, outer, n, inner, op_);
    return;
  }
  int64_t* ip = (index && index->defined()) ? index->data<int64_t>() : nullptr;
  parallel_for(outer * inner, 256, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / inner, i = r % inner;
      const float* p = xp + o * n * inner + i;
      {
        float best = p[0];
        int64_t arg = 0;
        for (int64_t j = 1; j < n; ++j) {
          float v = p[j * inner];
          bool better = op == ReduceOp::Max ? (v > best || (std::isnan(v) && !std::isnan(best)))
                                            : (v < best || (std::isnan(v) && !std::isnan(best)));
          if (better) {
            best = v;
            arg = j;
          }
        }
        op_[r] = best;
        if (ip) ip[r] = arg;
      }
    }
  });
}

namespace {

// Min and max of p[0, n) in 16 independent lanes (vectorisable: `v < m ? v : m` is one vminps),
// with NaN tracked separately so that it propagates as torch's aminmax does.
struct RangeAcc {
  float lo = INFINITY, hi = -INFINITY;
  bool nan = false;
  void add(const RangeAcc& o) {
    lo = o.lo < lo ? o.lo : lo;
    hi = o.hi > hi ? o.hi : hi;
    nan = nan || o.nan;
  }
};

RangeAcc range_of(const float* p, int64_t n) {
  constexpr int L = 16;
  // The NaN marks are float lanes too: with int lanes (`nan |= v != v`) GCC 12 gave up on
  // vectorising the loop, and the scalar loop was the slowest pass of a fake-quantized step.
  float lo[L], hi[L], nan[L];
  for (int l = 0; l < L; ++l) {
    lo[l] = INFINITY;
    hi[l] = -INFINITY;
    nan[l] = 0.f;
  }
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int l = 0; l < L; ++l) {
      const float v = p[i + l];
      lo[l] = v < lo[l] ? v : lo[l];
      hi[l] = v > hi[l] ? v : hi[l];
      nan[l] = v != v ? 1.f : nan[l];
    }
  RangeAcc r;
  for (; i < n; ++i) {
    const float v = p[i];
    r.lo = v < r.lo ? v : r.lo;
    r.hi = v > r.hi ? v : r.hi;
    r.nan = r.nan || v != v;
  }
  for (int l = 0; l < L; ++l) r.add({lo[l], hi[l], nan[l] != 0.f});
  return r;
}

}  // namespace

void CpuBackend::min_max_rows(const Tensor& x, int64_t rows, int64_t n, Tensor& mn, Tensor& mx) {
  const float* xp = x.data<float>();
  float* lo = mn.data<float>();
  float* hi = mx.data<float>();
  auto store = [&](int64_t r, const RangeAcc& a) {
    lo[r] = a.nan ? NAN : a.lo;
    hi[r] = a.nan ? NAN : a.hi;
  };
  if (rows >= num_threads()) {
    parallel_for(rows, std::max<int64_t>(1, (1 << 15) / n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) store(r, range_of(xp + r * n, n));
    });
    return;
  }
  // Few long rows (a whole activation tensor): chunks of each row in parallel, combined after
  // (min and max are exact, so the split does not change the result).
  constexpr int64_t kChunk = 1 << 15;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<RangeAcc> part(chunks);
    parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) part[c] = range_of(xp + r * n + c * kChunk, std::min(kChunk, n - c * kChunk));
    });
    RangeAcc a;
    for (const auto& p : part) a.add(p);
    store(r, a);
  }
}

void CpuBackend::softmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log,
                         Tensor& y) {
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(outer * inner, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / inner, i = r % inner;
      const float* p = xp + o * n * inner + i;
      float* q = yp + o * n * inner + i;
      float mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, p[j * inner]);
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(p[j * inner] - mx));
      if (log) {
        float lse = static_cast<float>(std::log(s));
        for (int64_t j = 0; j < n; ++j) q[j * inner] = p[j * inner] - mx - lse;
      } else {
        float inv = static_cast<float>(1.0 / s);
        for (int64_t j = 0; j < n; ++j) q[j * inner] = std::exp(p[j * inner] - mx) * inv;
      }
    }
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t outer, int64_t n,
                                  int64_t inner, bool log, Tensor& gx) {
  const float* yp = y.data<float>();
  const float* gp = gy.data<float>();
  float* xp = gx.data<float>();
  parallel_for(outer * inner, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / inner, i = r % inner;
      int64_t base = o * n * inner + i;
      double s = 0.0;
      if (log) {  // gx = gy - softmax * sum(gy)
        for (int64_t j = 0; j < n; ++j) s += gp[base + j * inner];
        for (int64_t j = 0; j < n; ++j) {
          int64_t k = base + j * inner;
          xp[k] = gp[k] - std::exp(yp[k]) * static_cast<float>(s);
        }
      } else {  // gx = y * (gy - sum(gy * y))
        for (int64_t j = 0; j < n; ++j) s += gp[base + j * inner] * yp[base + j * inner];
        for (int64_t j = 0; j < n; ++j) {
          int64_t k = base + j * inner;
          xp[k] = yp[k] * (gp[k] - static_cast<float>(s));
        }
      }
    }
  });
}

void CpuBackend::nll_forward(const Tensor& logp, const Tensor& target, int64_t ignore_index,
                             Tensor& loss) {
  const int64_t rows = logp.size(0), classes = logp.size(1);
  const float* lp = logp.data<float>();
  const int64_t* t = target.data<int64_t>();
  float* l = loss.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    if (t[r] == ignore_index) {
      l[r] = 0.f;
      continue;
    }
    SHRINK_CHECK(t[r] >= 0 && t[r] < classes, "nll_loss: target ", t[r], " at row ", r,
                 " is out of range for ", classes, " classes");
    l[r] = -lp[r * classes + t[r]];
  }
}

void CpuBackend::nll_backward(const Tensor& target, const Tensor& gloss, int64_t ignore_index,
                              Tensor& glogp) {
  const int64_t rows = glogp.size(0), classes = glogp.size(1);
  const int64_t* t = target.data<int64_t>();
  const float* g = gloss.data<float>();
  float* o = glogp.data<float>();
  std::fill_n(o, glogp.numel(), 0.f);
  for (int64_t r = 0; r < rows; ++r)
    if (t[r] != ignore_index) o[r * classes + t[r]] = -g[r];
}

namespace {
// Orders (value, index) pairs by value, then by index, so selection is deterministic; NaN ranks
// as the largest value.
struct ByValue {
  const float* v;
  bool operator()(int64_t a, int64_t b) const { return scalar::ascending_before(v[a], a, v[b], b); }
};
struct ByValueDesc {
  const float* v;
  bool operator()(int64_t a, int64_t b) const { return scalar::descending_before(v[a], a, v[b], b); }
};
}  // namespace

void CpuBackend::kth_value(const Tensor& x, int64_t rows, int64_t n, int64_t k, Tensor& out,
                           Tensor& index) {
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  int64_t* ip = index.data<int64_t>();
  parallel_for(rows, 1, [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(n);
    for (int64_t r = b; r < e; ++r) {
      std::iota(idx.begin(), idx.end(), 0);
      const float* row = xp + r * n;
      std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), ByValue{row});
      ip[r] = idx[k - 1];
      op[r] = row[idx[k - 1]];
    }
  });
}

void CpuBackend::topk(const Tensor& x, int64_t rows, int64_t n, int64_t k, bool largest,
                      Tensor& values, Tensor& index) {
  const float* xp = x.data<float>();
  float* vp = values.data<float>();
  int64_t* ip = index.data<int64_t>();
  parallel_for(rows, 1, [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(n);
    for (int64_t r = b; r < e; ++r) {
      std::iota(idx.begin(), idx.end(), 0);
      const float* row = xp + r * n;
      if (largest)
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), ByValueDesc{row});
      else
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), ByValue{row});
      for (int64_t j = 0; j < k; ++j) {
        ip[r * k + j] = idx[j];
        vp[r * k + j] = row[idx[j]];
      }
    }
  });
}

}  // namespace shrink::cpu
