// Elementwise ops: broadcasting binary arithmetic, unary math and activations, comparisons.
#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;
using detail::empty_like;

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    SHRINK_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
                 " are not broadcastable");
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  SHRINK_CHECK(shape.size() <= g.shape().size(), "sum_to_shape: cannot reduce ", g.shape(),
               " to ", shape);
  const Shape& gs = g.shape();
  size_t lead = gs.size() - shape.size();
  std::vector<int64_t> strides(gs.size(), 0);
  int64_t stride = 1;
  for (size_t i = gs.size(); i-- > lead;) {
    int64_t d = shape[i - lead];
    SHRINK_CHECK(d == gs[i] || d == 1, "sum_to_shape: cannot reduce ", gs, " to ", shape);
    strides[i] = (d == 1 && gs[i] != 1) ? 0 : stride;
    stride *= d;
  }
  Tensor out = Tensor::empty(shape, DType::F32, g.device());
  if (g.numel() == 0) {
    out.fill_(0.f);
    return out;
  }
  backend(g.device()).sum_to(g, gs, strides, out);
  return out;
}

namespace {

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_f32(a, name, "a");
  check_f32(b, name, "b");
  detail::check_same_device(a, b, name);
  Broadcast bc = make_broadcast(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), name),
                             DType::F32, a.device());
  if (out.numel() > 0) backend(a.device()).binary(op, a, b, bc, out);
  return out;
}

OpKind kind_of(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return OpKind::Add;
    case BinaryOp::Sub: return OpKind::Sub;
    case BinaryOp::Mul: return OpKind::Mul;
    case BinaryOp::Div: return OpKind::Div;
    case BinaryOp::Pow: return OpKind::Pow;
    case BinaryOp::Max: return OpKind::Max;
    case BinaryOp::Min: return OpKind::Min;
    default: return OpKind::Custom;
  }
}

// The shape an input's gradient is summed down to, kept only when it differs from the output's
// (the common same-shape case copies no shape and sums nothing).
struct GradShape {
  bool reduce;
  Shape shape;
  GradShape(const Shape& in, const Shape& out) : reduce(in != out), shape(reduce ? in : Shape()) {}
  Tensor operator()(const Tensor& g) const { return reduce ? sum_to_shape(g, shape) : g; }
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor out = binary_raw(op, a, b, name);
  if (!needs_grad({&a, &b})) return out;
  const GradShape sa(a.shape(), out.shape()), sb(b.shape(), out.shape());
  bool ga = a.requires_grad(), gb = b.requires_grad();
  std::function<std::vector<Tensor>(const Tensor&)> bw;
  switch (op) {
    case BinaryOp::Add:
      bw = [sa, sb, ga, gb](const Tensor& g) {
        return std::vector<Tensor>{ga ? sa(g) : Tensor(),
                                   gb ? sb(g) : Tensor()};
      };
      break;
    case BinaryOp::Sub:
      bw = [sa, sb, ga, gb](const Tensor& g) {
        return std::vector<Tensor>{ga ? sa(g) : Tensor(),
                                   gb ? sb(neg(g)) : Tensor()};
      };
      break;
    case BinaryOp::Mul: {
      // Only the factor each gradient needs is saved. The inputs are saved as they are (not
      // detached: the node holds them anyway, and backward runs without recording).
      Tensor for_ga = ga ? b : Tensor(), for_gb = gb ? a : Tensor();
      bw = [for_ga, for_gb, sa, sb](const Tensor& g) {
        return std::vector<Tensor>{for_ga.defined() ? sa(mul(g, for_ga)) : Tensor(),
                                   for_gb.defined() ? sb(mul(g, for_gb)) : Tensor()};
      };
      break;
    }
    case BinaryOp::Div: {
      Tensor bd = b.detach(), od = out.detach();
      bw = [bd, od, sa, sb, ga, gb](const Tensor& g) {
        Tensor ga_t = div(g, bd);
        return std::vector<Tensor>{ga ? sa(ga_t) : Tensor(),
                                   gb ? sb(neg(mul(ga_t, od))) : Tensor()};
      };
      break;
    }
    case BinaryOp::Pow: {
      Tensor ad = a.detach(), bd = b.detach(), od = out.detach();
      bw = [ad, bd, od, sa, sb, ga, gb](const Tensor& g) {
        Tensor gat, gbt;
        if (ga) gat = sa(mul(g, mul(bd, pow(ad, sub(bd, Tensor::scalar(1.f, bd.device()))))));
        if (gb) gbt = sb(mul(g, mul(od, log(ad))));
        return std::vector<Tensor>{gat, gbt};
      };
      break;
    }
    case BinaryOp::Max:
    case BinaryOp::Min: {
      // The winner gets the gradient; on ties each side gets half (as torch.maximum/minimum).
      Tensor wins = binary_raw(op == BinaryOp::Max ? BinaryOp::Gt : BinaryOp::Lt, a, b, name);
      Tensor ties = binary_raw(BinaryOp::Eq, a, b, name);
      Tensor share_a = add(wins, mul(ties, 0.5f));
      bw = [share_a, sa, sb, ga, gb](const Tensor& g) {
        Tensor one = Tensor::scalar(1.f, g.device());
        return std::vector<Tensor>{ga ? sa(mul(g, share_a)) : Tensor(),
                                   gb ? sb(mul(g, sub(one, share_a))) : Tensor()};
      };
      break;
    }
    default:
      return out;  // comparisons carry no gradient
  }
  record(out, kind_of(op), {a, b}, std::move(bw));
  return out;
}

Tensor unary(UnaryOp op, OpKind kind, const Tensor& x, const char* name, float p0 = 0.f,
             float p1 = 0.f, bool save_output = false) {
  check_f32(x, name, "input");
  Tensor y = empty_like(x);
  if (y.numel() > 0) backend(x.device()).unary(op, x, y, p0, p1);
  if (needs_grad({&x})) {
    Tensor xd = x.detach();
    Tensor yd = save_output ? y.detach() : Tensor();
    record(y, kind, {x}, [op, xd, yd, p0, p1](const Tensor& g) {
      Tensor gx = empty_like(g);
      if (g.numel() > 0) backend(g.device()).unary_backward(op, xd, yd, g, gx, p0, p1);
      return std::vector<Tensor>{gx};
    }, {static_cast<int64_t>(op)});
  }
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b, "div"); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Pow, a, b, "pow"); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Max, a, b, "maximum"); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Min, a, b, "minimum"); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Gt, a, b, "gt"); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Lt, a, b, "lt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Ge, a, b, "ge"); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Le, a, b, "le"); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Eq, a, b, "eq"); }
Tensor gt(const Tensor& a, float b) { return gt(a, Tensor::scalar(b, a.device())); }
Tensor lt(const Tensor& a, float b) { return lt(a, Tensor::scalar(b, a.device())); }
Tensor ge(const Tensor& a, float b) { return ge(a, Tensor::scalar(b, a.device())); }
Tensor le(const Tensor& a, float b) { return le(a, Tensor::scalar(b, a.device())); }

Tensor add(const Tensor& a, float b) { return unary(UnaryOp::AddScalar, OpKind::AddScalar, a, "add", b); }
Tensor mul(const Tensor& a, float b) { return unary(UnaryOp::MulScalar, OpKind::MulScalar, a, "mul", b); }
Tensor pow(const Tensor& a, float e) { return unary(UnaryOp::PowScalar, OpKind::PowScalar, a, "pow", e); }

Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, OpKind::Neg, x, "neg"); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, OpKind::Exp, x, "exp", 0, 0, true); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, OpKind::Log, x, "log"); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, OpKind::Sqrt, x, "sqrt", 0, 0, true); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, OpKind::Abs, x, "abs"); }
Tensor sign(const Tensor& x) { return unary(UnaryOp::Sign, OpKind::Sign, x, "sign"); }
Tensor round(const Tensor& x) { return unary(UnaryOp::Round, OpKind::Round, x, "round"); }
Tensor clamp(const Tensor& x, float lo, float hi) {
  SHRINK_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
  return unary(UnaryOp::Clamp, OpKind::Clamp, x, "clamp", lo, hi);
}
Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, OpKind::Relu, x, "relu"); }
Tensor relu6(const Tensor& x) { return unary(UnaryOp::Relu6, OpKind::Relu6, x, "relu6"); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::Gelu, OpKind::Gelu, x, "gelu"); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, OpKind::Sigmoid, x, "sigmoid", 0, 0, true); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, OpKind::Tanh, x, "tanh", 0, 0, true); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, float b) { return add(a, b); }
Tensor operator-(const Tensor& a, float b) { return add(a, -b); }
Tensor operator*(const Tensor& a, float b) { return mul(a, b); }
Tensor operator/(const Tensor& a, float b) { return div(a, Tensor::scalar(b, a.device())); }
Tensor operator*(float a, const Tensor& b) { return mul(b, a); }

}  // namespace shrink
