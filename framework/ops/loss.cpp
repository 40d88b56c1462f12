// softmax, log_softmax and the losses.
#include <cmath>

#include "framework/ops/op_util.h"
#include "framework/ops/ops.h"

namespace shrink {

using detail::check_f32;

namespace {
Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_f32(x, name, "input");
  dim = wrap_dim(dim, x.dim(), name);
  auto s = detail::split_at(x.shape(), x.dim() == 0 ? 0 : dim);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() > 0) backend(x.device()).softmax(x, s.outer, s.n, s.inner, log, y);
  if (needs_grad({&x})) {
    Tensor yd = y.detach();
    record(y, log ? OpKind::LogSoftmax : OpKind::Softmax, {x},
           [yd, s, log](const Tensor& g) {
             Tensor gx = Tensor::empty(g.shape(), DType::F32, g.device());
             if (gx.numel() > 0)
               backend(g.device()).softmax_backward(yd, g, s.outer, s.n, s.inner, log, gx);
             return std::vector<Tensor>{gx};
           },
           {dim});
  }
  return y;
}

Tensor reduce_loss(const Tensor& pointwise, Reduction r, const char* op) {
  switch (r) {
    case Reduction::None: return pointwise;
    case Reduction::Sum: return sum(pointwise);
    case Reduction::Mean: return mean(pointwise);
    case Reduction::BatchMean:
      SHRINK_CHECK(pointwise.dim() >= 1, op, ": batchmean needs a batch dim");
      return mul(sum(pointwise), 1.f / static_cast<float>(pointwise.size(0)));
  }
  return pointwise;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction,
                int64_t ignore_index) {
  check_f32(logp, "nll_loss", "input");
  SHRINK_CHECK(logp.dim() == 2, "nll_loss: input must be [N, C], got ", logp.shape());
  SHRINK_CHECK(target.dtype() == DType::I64 && target.dim() == 1 && target.size(0) == logp.size(0),
               "nll_loss: target must be i64[", logp.size(0), "], got ", target.describe());
  const int64_t rows = logp.size(0);
  Tensor per_row = Tensor::empty({rows}, DType::F32, logp.device());
  backend(logp.device()).nll_forward(logp, target, ignore_index, per_row);
  if (needs_grad({&logp})) {
    Shape ls = logp.shape();
    record(per_row, OpKind::NllLoss, {logp}, [target, ls, ignore_index](const Tensor& g) {
      Tensor gl = Tensor::empty(ls, DType::F32, g.device());
      backend(g.device()).nll_backward(target, g, ignore_index, gl);
      return std::vector<Tensor>{gl};
    });
  }
  if (reduction != Reduction::Mean) return reduce_loss(per_row, reduction, "nll_loss");
  // Mean over the targets that are not ignored, as PyTorch.
  int64_t valid = 0;
  Tensor tc = target.to(Device::CPU);
  const int64_t* t = tc.data<int64_t>();
  for (int64_t i = 0; i < rows; ++i) valid += t[i] != ignore_index;
  return mul(sum(per_row), valid > 0 ? 1.f / static_cast<float>(valid) : NAN);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction,
                     int64_t ignore_index) {
  SHRINK_CHECK(logits.defined() && logits.dim() == 2, "cross_entropy: logits must be [N, C], got ",
               logits.describe());
  return nll_loss(log_softmax(logits, 1), target, reduction, ignore_index);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  SHRINK_CHECK(input.defined() && target.defined() && input.shape() == target.shape(),
               "mse_loss: input ", input.describe(), " and target ", target.describe(),
               " must have the same shape");
  Tensor d = sub(input, target);
  return reduce_loss(mul(d, d), reduction, "mse_loss");
}

Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction, bool log_target) {
  SHRINK_CHECK(input.defined() && target.defined() && input.shape() == target.shape(),
               "kl_div: input ", input.describe(), " and target ", target.describe(),
               " must have the same shape");
  Tensor pointwise;
  if (log_target) {
    pointwise = mul(exp(target), sub(target, input));
  } else {
    // target * (log target - input), with 0 where target == 0 (xlogy convention).
    Tensor positive = gt(target, 0.f);
    Tensor safe = where(positive, target, Tensor::ones(target.shape(), DType::F32, target.device()));
    pointwise = mul(target, sub(log(safe), input));
  }
  return reduce_loss(pointwise, reduction, "kl_div");
}

}  // namespace shrink

namespace shrink {

namespace {

// The fused distillation losses: per-row terms and the gradient from the backend in one pass,
// then total = scale * sum(rows) and d total / d student = scale * grad.
Tensor distill(DistillLoss kind, const Tensor& s, const Tensor& t, float temperature, const char* name) {
  detail::check_f32(s, name, "student");
  detail::check_f32(t, name, "teacher");
  SHRINK_CHECK(s.shape() == t.shape(), name, ": student ", s.shape(), " and teacher ", t.shape(),
               " must have the same shape");
  SHRINK_CHECK(s.dim() >= 1 && s.numel() > 0, name, ": needs a non-empty input, got ", s.shape());
  SHRINK_CHECK(temperature > 0.f && std::isfinite(temperature), name, ": temperature must be > 0, got ", temperature);
  detail::check_same_device(s, t, name);
  const int64_t n = s.shape().back(), rows = s.numel() / n;
  Tensor loss = Tensor::empty({rows}, DType::F32, s.device());
  Tensor grad = Tensor::empty(s.shape(), DType::F32, s.device());
  backend(s.device()).distill_loss(kind, s, t.detach(), rows, n, temperature, loss, grad);
  const float scale = kind == DistillLoss::Kl ? temperature * temperature / static_cast<float>(s.size(0))
                                              : 1.f / static_cast<float>(s.numel());
  Tensor total;
  {
    NoGradGuard ng;
    total = mul(sum(loss), scale);
  }
  if (needs_grad({&s})) {
    record(total, OpKind::Custom, {s}, [grad, scale](const Tensor& g) {
      return std::vector<Tensor>{mul(grad, mul(g, scale))};
    }, {static_cast<int64_t>(kind)});
  }
  return total;
}

}  // namespace

Tensor distill_kl(const Tensor& student, const Tensor& teacher, float temperature) {
  return distill(DistillLoss::Kl, student, teacher, temperature, "distill_kl");
}

Tensor distill_mse(const Tensor& student, const Tensor& teacher) {
  return distill(DistillLoss::Mse, student, teacher, 1.f, "distill_mse");
}

}  // namespace shrink
