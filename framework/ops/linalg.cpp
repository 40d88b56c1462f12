// matmul and linear on top of the backend GEMM.
#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;

namespace {
// C[m,n] (+)= op(A) op(B) for row-major contiguous operands.
void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, int64_t m, int64_t n,
          int64_t k, float beta, int64_t a_off = 0, int64_t b_off = 0, int64_t c_off = 0) {
  backend(c.device()).gemm(ta, tb, m, n, k, 1.f, a.data<float>() + a_off, ta ? m : k,
                           b.data<float>() + b_off, tb ? k : n, beta, c.data<float>() + c_off, n);
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_f32(a, "matmul", "a");
  check_f32(b, "matmul", "b");
  detail::check_same_device(a, b, "matmul");
  SHRINK_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: need rank >= 2, got ", a.shape(), " and ",
               b.shape());
  const int64_t k = a.size(-1);
  SHRINK_CHECK(b.size(-2) == k, "matmul: inner dims differ: ", a.shape(), " x ", b.shape());
  const int64_t n = b.size(-1);
  if (b.dim() == 2) {  // [.., m, k] x [k, n]: one GEMM over all leading rows
    const int64_t rows = a.numel() / k;
    Shape out_shape = a.shape();
    out_shape.back() = n;
    Tensor out = Tensor::empty(out_shape, DType::F32, a.device());
    gemm(a, false, b, false, out, rows, n, k, 0.f);
    if (needs_grad({&a, &b})) {
      Tensor ad = a.detach(), bd = b.detach();
      bool ga = a.requires_grad(), gb = b.requires_grad();
      record(out, OpKind::MatMul, {a, b}, [ad, bd, rows, n, k, ga, gb](const Tensor& g) {
        Tensor gat, gbt;
        if (ga) {
          gat = Tensor::empty(ad.shape(), DType::F32, g.device());
          gemm(g, false, bd, true, gat, rows, k, n, 0.f);
        }
        if (gb) {
          gbt = Tensor::empty(bd.shape(), DType::F32, g.device());
          gemm(ad, true, g, false, gbt, k, n, rows, 0.f);
        }
        return std::vector<Tensor>{gat, gbt};
      });
    }
    return out;
  }
  // Batched: equal leading dims.
  SHRINK_CHECK(a.dim() == b.dim(), "matmul: batched operands need equal rank: ", a.shape(),
               " x ", b.shape());
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    SHRINK_CHECK(a.size(d) == b.size(d), "matmul: batch dims differ: ", a.shape(), " x ",
                 b.shape());
  const int64_t m = a.size(-2);
  const int64_t batch = a.numel() / (m * k);
  Shape out_shape = a.shape();
  out_shape.back() = n;
  Tensor out = Tensor::empty(out_shape, DType::F32, a.device());
  for (int64_t i = 0; i < batch; ++i) gemm(a, false, b, false, out, m, n, k, 0.f, i * m * k, i * k * n, i * m * n);
  if (needs_grad({&a, &b})) {
    Tensor ad = a.detach(), bd = b.detach();
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record(out, OpKind::MatMul, {a, b}, [ad, bd, batch, m, n, k, ga, gb](const Tensor& g) {
      Tensor gat, gbt;
      if (ga) gat = Tensor::empty(ad.shape(), DType::F32, g.device());
      if (gb) gbt = Tensor::empty(bd.shape(), DType::F32, g.device());
      for (int64_t i = 0; i < batch; ++i) {
        if (ga) gemm(g, false, bd, true, gat, m, k, n, 0.f, i * m * n, i * k * n, i * m * k);
        if (gb) gemm(ad, true, g, false, gbt, k, n, m, 0.f, i * m * k, i * m * n, i * k * n);
      }
      return std::vector<Tensor>{gat, gbt};
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_f32(x, "linear", "input");
  check_f32(weight, "linear", "weight");
  SHRINK_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", weight.shape());
  SHRINK_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", x.shape(),
               " does not match weight ", weight.shape());
  const int64_t in = weight.size(1), out_f = weight.size(0);
  const int64_t rows = x.numel() / std::max<int64_t>(in, 1);
  if (bias.defined()) {
    check_f32(bias, "linear", "bias");
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == out_f, "linear: bias ", bias.shape(),
                 " for weight ", weight.shape());
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor out = Tensor::empty(out_shape, DType::F32, x.device());
  float beta = 0.f;
  if (bias.defined()) {
    out.copy_broadcast_(bias);  // over the rows
    beta = 1.f;
  }
  gemm(x, false, weight, true, out, rows, out_f, in, beta);
  if (needs_grad({&x, &weight, &bias})) {
    Tensor xd = x.detach(), wd = weight.detach();
    bool gx = x.requires_grad(), gw = weight.requires_grad();
    bool gb = bias.defined() && bias.requires_grad();
    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    bool has_bias = bias.defined();
    record(out, OpKind::Linear, std::move(inputs),
           [xd, wd, rows, in, out_f, gx, gw, gb, has_bias](const Tensor& g) {
             std::vector<Tensor> r(has_bias ? 3 : 2);
             if (gx) {
               r[0] = Tensor::empty(xd.shape(), DType::F32, g.device());
               gemm(g, false, wd, false, r[0], rows, in, out_f, 0.f);
             }
             if (gw) {
               r[1] = Tensor::empty(wd.shape(), DType::F32, g.device());
               gemm(g, true, xd, false, r[1], out_f, in, rows, 0.f);
             }
             if (gb) r[2] = sum_to_shape(g.reshape({rows, out_f}), {out_f});
             return r;
           });
  }
  return out;
}

}  // namespace shrink
