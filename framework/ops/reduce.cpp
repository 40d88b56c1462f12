// Reductions, selection (max/min/argmax/kthvalue/topk, where, masked_fill), embedding, dropout.
#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/core/random.h"
#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;
using detail::split_at;

namespace {

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
    bool r = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!r) out.push_back(s[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t rank,
                                    const char* op) {
  std::vector<int64_t> out;
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, rank, op);
    SHRINK_CHECK(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", d, " repeated");
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Sums (no autograd) over sorted dims, keeping reduced dims as size 1. Size-1 dims are dropped
// and neighbouring dims of the same kind merged first, so that [O, 1, 1, I, 1, kh, 1, kw]
// summed over its odd dims is one pass over rows of I*kh*kw; the remaining runs of reduced dims
// are reduced last run first. SumAbs and SumSquares transform the terms of the first pass (later
// passes add sums); Mean is a Sum scaled at the end.
Tensor sum_raw(const Tensor& x, const std::vector<int64_t>& dims, ReduceOp op) {
  Shape out_shape = x.shape();
  for (int64_t d : dims) out_shape[d] = 1;
  if (x.numel() == 0) {  // a sum over nothing is 0; a mean over nothing 0/0 = NaN, as torch
    Tensor zero = Tensor::zeros(out_shape, DType::F32, x.device());
    if (op != ReduceOp::Mean) return zero;
    NoGradGuard ng;
    return mul(zero, std::numeric_limits<float>::infinity());
  }
  std::vector<int64_t> sizes;
  std::vector<bool> reduced;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    const bool r = std::binary_search(dims.begin(), dims.end(), d);
    if (!sizes.empty() && reduced.back() == r)
      sizes.back() *= x.size(d);
    else
      sizes.push_back(x.size(d)), reduced.push_back(r);
  }
  ReduceOp pass_op = op == ReduceOp::Mean ? ReduceOp::Sum : op;
  Tensor cur = x;
  bool any = false;
  for (int64_t k = static_cast<int64_t>(sizes.size()) - 1; k >= 0; --k) {
    if (!reduced[k]) continue;
    int64_t outer = 1, inner = 1;
    for (int64_t j = 0; j < k; ++j) outer *= sizes[j];
    for (size_t j = k + 1; j < sizes.size(); ++j) inner *= sizes[j];
    Tensor out = Tensor::empty({outer * inner}, DType::F32, x.device());
    backend(x.device()).reduce(pass_op, cur, outer, sizes[k], inner, out, nullptr);
    pass_op = ReduceOp::Sum;
    sizes[k] = 1;
    cur = out;
    any = true;
  }
  if (!any) {  // only size-1 dims reduced: one pass of single terms (a copy, or |x|, x*x)
    Tensor out = Tensor::empty({x.numel()}, DType::F32, x.device());
    backend(x.device()).reduce(pass_op, x, x.numel(), 1, 1, out, nullptr);
    cur = out;
  }
  cur = reshape(cur, out_shape);
  if (op == ReduceOp::Mean) {
    int64_t count = 1;
    for (int64_t d : dims) count *= x.size(d);
    NoGradGuard ng;
    cur = mul(cur, 1.f / static_cast<float>(count));
  }
  return cur;
}

Tensor sum_like(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, ReduceOp op,
                const char* name) {
  check_f32(x, name, "input");
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), name);
  Tensor kept = x.dim() == 0 ? x : sum_raw(x, dims, op);
  Tensor y = reshape(kept.detach(), reduced_shape(x.shape(), dims, keepdim));
  if (x.dim() == 0) y = x.detach().contiguous_copy();
  if (needs_grad({&x})) {
    Shape xs = x.shape(), ks = kept.shape();
    float scale = 1.f;
    if (op == ReduceOp::Mean && !xs.empty()) {
      int64_t count = 1;
      for (int64_t d : dims) count *= xs[d];
      scale = 1.f / static_cast<float>(count);
    }
    y = y.detach();
    record(y, op == ReduceOp::Mean ? OpKind::Mean : OpKind::Sum, {x},
           [xs, ks, scale](const Tensor& g) {
             Tensor e = expand(reshape(g, ks), xs);
             return std::vector<Tensor>{scale == 1.f ? e : mul(e, scale)};
           }, dims);
  }
  return y;
}

// Scatters g (shaped like `index`, i64 positions along `dim` of a tensor shaped xs) into a
// zero tensor shaped xs. Uses the embedding-backward scatter-add kernel on flat indices.
Tensor scatter_along(const Tensor& g, const Tensor& index, const Shape& xs, int64_t dim) {
  auto s = split_at(xs, dim);
  Tensor idx = index.to(Device::CPU);
  const int64_t k = index.numel() / std::max<int64_t>(s.outer * s.inner, 1);
  Tensor flat = Tensor::empty({index.numel()}, DType::I64);
  const int64_t* ip = idx.data<int64_t>();
  int64_t* fp = flat.data<int64_t>();
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < s.inner; ++i) {
        int64_t pos = (o * k + j) * s.inner + i;
        fp[pos] = (o * s.n + ip[pos]) * s.inner + i;
      }
  Tensor flat_dev = flat.to(g.device());
  Tensor gx = Tensor::empty({shape_numel(xs), 1}, DType::F32, g.device());
  Tensor gcol = g.detach().contiguous_copy();
  backend(g.device()).embedding_backward(reshape(gcol, {g.numel(), 1}), flat_dev, gx);
  return reshape(gx, xs);
}

Tensor minmax(const Tensor& x, int64_t dim, bool keepdim, bool is_max, Tensor* index_out) {
  const char* name = is_max ? "max" : "min";
  check_f32(x, name, "input");
  SHRINK_CHECK(x.dim() > 0 && x.numel() > 0, name, ": needs a non-empty tensor, got ", x.describe());
  dim = wrap_dim(dim, x.dim(), name);
  auto s = split_at(x.shape(), dim);
  Shape ks = x.shape();
  ks[dim] = 1;
  Tensor out = Tensor::empty(ks, DType::F32, x.device());
  Tensor idx = Tensor::empty(ks, DType::I64, x.device());
  backend(x.device()).reduce(is_max ? ReduceOp::Max : ReduceOp::Min, x, s.outer, s.n, s.inner,
                             out, &idx);
  Shape final_shape = reduced_shape(x.shape(), {dim}, keepdim);
  if (index_out) *index_out = reshape(idx, final_shape);
  Tensor y = make_view(out, final_shape, 0);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(y, is_max ? OpKind::Max : OpKind::Min, {x}, [idx, xs, ks, dim](const Tensor& g) {
      return std::vector<Tensor>{scatter_along(reshape(g, ks), idx, xs, dim)};
    }, {dim});
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) all[d] = d;
  return sum_like(x, all, false, ReduceOp::Sum, "sum");
}
Tensor mean(const Tensor& x) {
  SHRINK_CHECK(x.numel() > 0, "mean: empty tensor ", x.describe());
  std::vector<int64_t> all(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) all[d] = d;
  return sum_like(x, all, false, ReduceOp::Mean, "mean");
}
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_like(x, dims, keepdim, ReduceOp::Sum, "sum");
}
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_like(x, dims, keepdim, ReduceOp::Mean, "mean");
}

Tensor norm(const Tensor& x, int p, const std::vector<int64_t>& dims_in, bool keepdim) {
  check_f32(x, "norm", "input");
  SHRINK_CHECK(p == 1 || p == 2, "norm: p must be 1 or 2, got ", p);
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "norm");
  if (x.dim() == 0) return abs(x);  // one value: |x| for either p (gradient sign(x), 0 at 0)
  Tensor kept;
  {
    NoGradGuard ng;
    kept = sum_raw(x, dims, p == 1 ? ReduceOp::SumAbs : ReduceOp::SumSquares);
    if (p == 2) kept = sqrt(kept);
  }
  Tensor y = reshape(kept, reduced_shape(x.shape(), dims, keepdim));
  if (needs_grad({&x})) {
    Shape xs = x.shape(), ks = kept.shape();
    Tensor xd = x.detach();
    y = y.detach();
    // d|x|/dx = sign(x) (0 at 0); d||x||/dx = x / ||x|| (0 where the norm is 0, as torch).
    Tensor norms = p == 2 ? kept : Tensor();  // p = 1 needs only sign(x)
    record(y, OpKind::Norm, {x}, [p, xs, ks, xd, kept = norms](const Tensor& g) {
      Tensor gk = reshape(g, ks);
      if (p == 1) return std::vector<Tensor>{mul(expand(gk, xs), sign(xd))};
      // Both where()s: no inf/NaN is ever formed (the non-finite checks would stop on it).
      Tensor nonzero = gt(kept, 0.f);
      Tensor safe = where(nonzero, kept, Tensor::ones(ks, DType::F32, g.device()));
      Tensor scale = where(nonzero, div(gk, safe), Tensor::zeros(ks, DType::F32, g.device()));
      return std::vector<Tensor>{mul(expand(scale, xs), xd)};
    }, dims);
  }
  return y;
}
Tensor max(const Tensor& x, int64_t dim, bool keepdim) { return minmax(x, dim, keepdim, true, nullptr); }
Tensor min(const Tensor& x, int64_t dim, bool keepdim) { return minmax(x, dim, keepdim, false, nullptr); }
Tensor max(const Tensor& x) { return minmax(reshape(x, {x.numel()}), 0, false, true, nullptr); }
Tensor min(const Tensor& x) { return minmax(reshape(x, {x.numel()}), 0, false, false, nullptr); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor idx;
  NoGradGuard ng;
  minmax(x, dim, keepdim, true, &idx);
  return idx;
}

MinMax aminmax(const Tensor& x) {
  check_f32(x, "aminmax", "input");
  SHRINK_CHECK(x.dim() > 0 && x.shape().back() > 0, "aminmax: needs a non-empty last dim, got ", x.shape());
  const int64_t n = x.shape().back(), rows = x.numel() / n;
  Shape out(x.shape().begin(), x.shape().end() - 1);
  MinMax r{Tensor::empty(out, DType::F32, x.device()), Tensor::empty(out, DType::F32, x.device())};
  if (rows > 0) backend(x.device()).min_max_rows(x, rows, n, r.min, r.max);
  return r;
}

bool all_finite(const Tensor& x) {
  if (x.dtype() != DType::F32 || x.numel() == 0) return true;
  const Tensor flat = reshape(x.detach(), {1, x.numel()});  // tensors are contiguous: a view
  const MinMax r = aminmax(flat);
  const float lo = r.min.item(), hi = r.max.item();
  return std::isfinite(lo) && std::isfinite(hi);
}

Tensor kthvalue(const Tensor& x, int64_t k, int64_t dim, bool keepdim) {
  check_f32(x, "kthvalue", "input");
  SHRINK_CHECK(x.dim() > 0, "kthvalue: needs rank >= 1");
  dim = wrap_dim(dim, x.dim(), "kthvalue");
  const int64_t n = x.size(dim);
  SHRINK_CHECK(k >= 1 && k <= n, "kthvalue: k = ", k, " out of range for size ", n, " of dim ",
               dim, " in ", x.shape());
  // Move `dim` last so each row is contiguous.
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < x.dim(); ++d) if (d != dim) perm.push_back(d);
  perm.push_back(dim);
  Tensor xt = permute(x.detach(), perm);
  const int64_t rows = x.numel() / n;
  Tensor vals = Tensor::empty({rows}, DType::F32, x.device());
  Tensor idx = Tensor::empty({rows}, DType::I64, x.device());
  backend(x.device()).kth_value(xt, rows, n, k, vals, idx);
  Shape ks = x.shape();
  ks[dim] = 1;
  Tensor y = reshape(vals, reduced_shape(x.shape(), {dim}, keepdim));
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    Tensor idx_k = reshape(idx, ks);  // rows are in (outer, inner) order, i.e. shape ks
    y = y.detach();
    record(y, OpKind::Custom, {x}, [idx_k, xs, ks, dim](const Tensor& g) {
      return std::vector<Tensor>{scatter_along(reshape(g, ks), idx_k, xs, dim)};
    }, {k, dim});
  }
  return y;
}

TopK topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_f32(x, "topk", "input");
  SHRINK_CHECK(x.dim() > 0, "topk: needs rank >= 1");
  dim = wrap_dim(dim, x.dim(), "topk");
  const int64_t n = x.size(dim);
  SHRINK_CHECK(k >= 0 && k <= n, "topk: k = ", k, " out of range for size ", n, " of dim ",
               dim, " in ", x.shape());
  std::vector<int64_t> perm, inv(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) if (d != dim) perm.push_back(d);
  perm.push_back(dim);
  for (int64_t i = 0; i < x.dim(); ++i) inv[perm[i]] = i;
  Tensor xt = permute(x.detach(), perm);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  Tensor vals = Tensor::empty({rows, k}, DType::F32, x.device());
  Tensor idx = Tensor::empty({rows, k}, DType::I64, x.device());
  if (rows > 0 && k > 0) backend(x.device()).topk(xt, rows, n, k, largest, vals, idx);
  Shape ts = xt.shape();
  ts.back() = k;
  TopK r;
  r.indices = permute(reshape(idx, ts), inv);
  Tensor v = permute(reshape(vals, ts), inv);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    Tensor index = r.indices;
    v = v.detach().contiguous_copy();
    record(v, OpKind::Custom, {x}, [index, xs, dim](const Tensor& g) {
      return std::vector<Tensor>{scatter_along(g, index, xs, dim)};
    }, {k, dim});
  }
  r.values = v;
  return r;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_f32(cond, "where", "cond");
  check_f32(a, "where", "a");
  check_f32(b, "where", "b");
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor ce = expand(cond.detach(), s), ae = expand(a.detach(), s), be = expand(b.detach(), s);
  Tensor y = Tensor::empty(s, DType::F32, a.device());
  if (y.numel() > 0) backend(a.device()).where(ce, ae, be, y);
  if (needs_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record(y, OpKind::Where, {a, b}, [ce, sa, sb, ga, gb](const Tensor& g) {
      Tensor zero = Tensor::zeros(g.shape(), DType::F32, g.device());
      Tensor gat, gbt;
      {
        Tensor t = Tensor::empty(g.shape(), DType::F32, g.device());
        if (ga) {
          backend(g.device()).where(ce, g, zero, t);
          gat = sum_to_shape(t, sa);
        }
      }
      if (gb) {
        Tensor t = Tensor::empty(g.shape(), DType::F32, g.device());
        backend(g.device()).where(ce, zero, g, t);
        gbt = sum_to_shape(t, sb);
      }
      return std::vector<Tensor>{gat, gbt};
    });
  }
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, float value) {
  check_f32(x, "masked_fill", "input");
  check_f32(mask, "masked_fill", "mask");
  SHRINK_CHECK(broadcast_shapes(x.shape(), mask.shape(), "masked_fill") == x.shape(),
               "masked_fill: mask ", mask.shape(), " does not broadcast to input ", x.shape());
  Tensor y = where(mask, Tensor::full(x.shape(), value, x.device()), x);
  if (y.grad_fn()) y.grad_fn()->kind = OpKind::MaskedFill;
  return y;
}

Tensor embedding(const Tensor& weight, const Tensor& index) {
  check_f32(weight, "embedding", "weight");
  SHRINK_CHECK(weight.dim() == 2, "embedding: weight must be [rows, dim], got ", weight.shape());
  SHRINK_CHECK(index.defined() && index.dtype() == DType::I64, "embedding: index must be i64, got ",
               index.describe());
  Shape out_shape = index.shape();
  out_shape.push_back(weight.size(1));
  Tensor y = Tensor::empty(out_shape, DType::F32, weight.device());
  backend(weight.device()).embedding_forward(weight, index, y);
  if (needs_grad({&weight})) {
    Shape ws = weight.shape();
    record(y, OpKind::Embedding, {weight}, [index, ws](const Tensor& g) {
      Tensor gw = Tensor::empty(ws, DType::F32, g.device());
      backend(g.device()).embedding_backward(g, index, gw);
      return std::vector<Tensor>{gw};
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  SHRINK_CHECK(p >= 0.f && p <= 1.f, "dropout: p = ", p, " must be in [0, 1]");
  if (!training || p == 0.f) return x;
  Tensor mask = Tensor::empty(x.shape());
  float* m = mask.data<float>();
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.uniform() >= p ? scale : 0.f;
  Tensor y = mul(x, mask.to(x.device()));
  if (y.grad_fn()) y.grad_fn()->kind = OpKind::Dropout;
  return y;
}

}  // namespace shrink
