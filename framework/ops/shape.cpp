// Shape ops: reshape (a view), permute/transpose, slice, cat/stack, expand, (un)squeeze.
#include <numeric>

#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

Tensor reshape(const Tensor& x, const Shape& shape) {
  SHRINK_CHECK(x.defined(), "reshape: input is undefined");
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SHRINK_CHECK(infer < 0, "reshape: more than one -1 in ", shape);
      infer = static_cast<int64_t>(i);
    } else {
      SHRINK_CHECK(s[i] >= 0, "reshape: negative dim in ", shape);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SHRINK_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape ", x.shape(),
                 " into ", shape);
    s[infer] = x.numel() / known;
  }
  SHRINK_CHECK(shape_numel(s) == x.numel(), "reshape: cannot reshape ", x.shape(), " (",
               x.numel(), " elements) into ", shape);
  if (s == x.shape()) return x;
  Tensor y = make_view(x, s, 0);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(y, OpKind::Reshape, {x}, [xs](const Tensor& g) {
      return std::vector<Tensor>{reshape(g, xs)};
    });
  }
  return y;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = wrap_dim(start_dim, x.dim(), "flatten");
  end_dim = wrap_dim(end_dim, x.dim(), "flatten");
  SHRINK_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape s;
  for (int64_t d = 0; d < start_dim; ++d) s.push_back(x.size(d));
  int64_t m = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) m *= x.size(d);
  s.push_back(m);
  for (int64_t d = end_dim + 1; d < x.dim(); ++d) s.push_back(x.size(d));
  return reshape(x, s);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& perm_in) {
  SHRINK_CHECK(x.defined(), "permute: input is undefined");
  SHRINK_CHECK(static_cast<int64_t>(perm_in.size()) == x.dim(), "permute: ", perm_in.size(),
               " dims given for input ", x.shape());
  std::vector<int64_t> perm(perm_in.size());
  std::vector<bool> seen(perm.size(), false);
  Shape out_shape(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    perm[i] = wrap_dim(perm_in[i], x.dim(), "permute");
    SHRINK_CHECK(!seen[perm[i]], "permute: dim ", perm[i], " repeated");
    seen[perm[i]] = true;
    out_shape[i] = x.size(perm[i]);
  }
  // When only size-1 dims move, the data order is unchanged: a reshape (a view), not a copy.
  bool in_order = true;
  int64_t prev = -1;
  for (int64_t d : perm) {
    if (x.size(d) == 1) continue;
    in_order &= d > prev;
    prev = d;
  }
  if (in_order) return reshape(x, out_shape);
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  if (y.numel() > 0) backend(x.device()).permute(x, perm, y);
  if (needs_grad({&x})) {
    std::vector<int64_t> inv(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
    record(y, OpKind::Permute, {x}, [inv](const Tensor& g) {
      return std::vector<Tensor>{permute(g, inv)};
    }, perm);
  }
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  std::vector<int64_t> perm(x.dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[wrap_dim(d0, x.dim(), "transpose")], perm[wrap_dim(d1, x.dim(), "transpose")]);
  return permute(x, perm);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  SHRINK_CHECK(x.defined() && x.dim() > 0, "slice: input must have rank >= 1");
  dim = wrap_dim(dim, x.dim(), "slice");
  SHRINK_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = x.size(dim);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  const int64_t len = (end - start + step - 1) / step;
  auto s = detail::split_at(x.shape(), dim);
  Shape out_shape = x.shape();
  out_shape[dim] = len;
  Tensor y;
  if (s.outer == 1 && step == 1) {
    y = make_view(x, out_shape, start * s.inner);  // leading-dim slice: free
  } else {
    y = Tensor::empty(out_shape, x.dtype(), x.device());
    if (y.numel() > 0)
      backend(x.device()).copy_block(y, s.outer, len, s.inner, const_cast<Tensor&>(x), n, start,
                                     step, true);
  }
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(y, OpKind::Slice, {x}, [xs, s, len, n, start, step](const Tensor& g) {
      Tensor gx = Tensor::zeros(xs, DType::F32, g.device());
      if (g.numel() > 0)
        backend(g.device()).copy_block(g, s.outer, len, s.inner, gx, n, start, step, false);
      return std::vector<Tensor>{gx};
    }, {dim, start, end, step});
  }
  return y;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  SHRINK_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& first = xs[0];
  SHRINK_CHECK(first.defined() && first.dim() > 0, "cat: tensors must have rank >= 1");
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape out_shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    SHRINK_CHECK(t.defined() && t.dim() == first.dim() && t.dtype() == first.dtype() &&
                     t.device() == first.device(),
                 "cat: tensor ", i, " ", t.describe(), " does not match tensor 0 ",
                 first.describe());
    for (int64_t d = 0; d < t.dim(); ++d)
      SHRINK_CHECK(d == dim || t.size(d) == first.size(d), "cat: tensor ", i, " shape ",
                   t.shape(), " differs from ", first.shape(), " outside dim ", dim);
    total += t.size(dim);
  }
  out_shape[dim] = total;
  Tensor y = Tensor::empty(out_shape, first.dtype(), first.device());
  auto s = detail::split_at(out_shape, dim);
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& t : xs) {
    if (t.numel() > 0)
      backend(y.device()).copy_block(t, s.outer, t.size(dim), s.inner, y, total, offset, 1, false);
    sizes.push_back(t.size(dim));
    offset += t.size(dim);
  }
  bool any = false;
  for (const Tensor& t : xs) any |= needs_grad({&t});
  if (any) {
    record(y, OpKind::Cat, xs, [sizes, dim](const Tensor& g) {
      std::vector<Tensor> r;
      int64_t off = 0;
      for (int64_t n : sizes) {
        r.push_back(slice(g, dim, off, off + n).contiguous_copy());
        off += n;
      }
      return r;
    }, {dim});
  }
  return y;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + dim, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "squeeze");
  if (x.size(dim) != 1) return x;
  Shape s = x.shape();
  s.erase(s.begin() + dim);
  return reshape(x, s);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  SHRINK_CHECK(!xs.empty(), "stack: no tensors given");
  dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < xs.size(); ++i) {
    SHRINK_CHECK(xs[i].shape() == xs[0].shape(), "stack: tensor ", i, " ", xs[i].describe(),
                 " differs from tensor 0 ", xs[0].describe());
    parts.push_back(unsqueeze(xs[i], dim));
  }
  return cat(parts, dim);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  SHRINK_CHECK(x.defined(), "expand: input is undefined");
  if (x.shape() == shape) return x;
  const Shape& xs = x.shape();
  std::vector<int64_t> strides = broadcast_strides(xs, shape, "expand");
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  if (y.numel() > 0) backend(x.device()).expand(x, strides, y);
  if (needs_grad({&x})) {
    Shape orig = xs;
    record(y, OpKind::Expand, {x}, [orig](const Tensor& g) {
      return std::vector<Tensor>{sum_to_shape(g, orig)};
    });
  }
  return y;
}

}  // namespace shrink
