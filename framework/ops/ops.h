// The framework's differentiable ops. Each is defined once (framework/ops/*.cpp): shape checks,
// output allocation, a call into the device's Backend kernel, and the backward rule.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "framework/core/autograd.h"
#include "framework/core/backend.h"
#include "framework/core/tensor.h"

namespace shrink {

class Generator;

// ---- elementwise (broadcasting for binary ops) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to the larger (half each on ties)
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
Tensor mul(const Tensor& a, float b);
Tensor pow(const Tensor& a, float exponent);
// Comparisons give f32 0/1 masks and no gradient.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, float b);
Tensor lt(const Tensor& a, float b);
Tensor ge(const Tensor& a, float b);
Tensor le(const Tensor& a, float b);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);      // gradient sign(x) (0 at 0)
Tensor sign(const Tensor& x);     // gradient 0
Tensor round(const Tensor& x);    // half to even; gradient 0
Tensor clamp(const Tensor& x, float lo, float hi);  // gradient 1 inside [lo, hi]
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor gelu(const Tensor& x);     // exact (erf) form, as torch's default
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, float b);
Tensor operator-(const Tensor& a, float b);
Tensor operator*(const Tensor& a, float b);
Tensor operator/(const Tensor& a, float b);
Tensor operator*(float a, const Tensor& b);

// ---- linear algebra ----
// matmul: [.., m, k] x [k, n] or batched [b, m, k] x [b, k, n] (equal leading dims).
Tensor matmul(const Tensor& a, const Tensor& b);
// linear: x [.., in] , weight [out, in], bias [out] (optional) -> [.., out]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- convolution and pooling (NCHW) ----
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& opt);
// [N, OC, OH, OW] of conv2d on an input and weight of these shapes (no checks: conv2d's).
Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dOptions& opt);
// Inference only (no operand may require grad while grad mode is on): an evaluation-mode batch
// norm (running statistics), then the residual and the ReLU when asked, folded into the
// convolution's output pass. Bit for bit conv2d, batch_norm and add/relu (or batch_norm_relu)
// run in turn, without the extra passes over the output. nn::conv_batch_norm_relu takes it for
// unintercepted Conv2d, BatchNorm2d and ReLU modules in evaluation.
Tensor conv2d_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Conv2dOptions& opt, const Tensor& bn_weight, const Tensor& bn_bias,
                         const Tensor& running_mean, const Tensor& running_var, float eps, bool relu,
                         const Tensor& residual = Tensor());
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0,
                  bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- normalisation ----
// Channels are dim 1 of x ([N, C] or [N, C, ...]). In training, batch statistics are used and
// running_mean/var (if defined) are updated in place with `momentum` and the unbiased variance.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  float momentum, float eps);
// relu(batch_norm(x, ...) + residual) (residual undefined: relu(batch_norm(x, ...))) as one op:
// the results and gradients of batch_norm, add and relu bit for bit, without their intermediate
// tensors, so three to five fewer passes over the activation. Records OpKind::BatchNormRelu;
// nn::batch_norm_relu takes it for a BatchNorm and a ReLU module that nothing intercepts.
Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       float momentum, float eps, const Tensor& residual = Tensor());
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, float eps);

// ---- softmax and losses ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
enum class Reduction { None, Mean, Sum, BatchMean };
// logits [N, C], target i64 [N]; mean over non-ignored targets.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);
Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction = Reduction::Mean,
                int64_t ignore_index = -100);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// torch.nn.functional.kl_div: input is log-probabilities; target probabilities, or
// log-probabilities when log_target. Pointwise target * (log target - input).
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
              bool log_target = false);

// Knowledge-distillation losses, fused: the forward pass also computes the gradient (one pass
// over each row, no softmax tensors), and the gradient reaches the student only (the teacher is
// a target). Softmax runs over the last dim.
//   distill_kl:  F.kl_div(log_softmax(s / T), softmax(t / T), reduction='batchmean') * T^2
//                (batchmean divides by s.size(0), as torch)
//   distill_mse: F.mse_loss(s, t) (mean over every element)
Tensor distill_kl(const Tensor& student, const Tensor& teacher, float temperature = 2.f);
Tensor distill_mse(const Tensor& student, const Tensor& teacher);

// ---- embedding, dropout ----
Tensor embedding(const Tensor& weight, const Tensor& index);
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);

// ---- shape ----
Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1; a view
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast materialised
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);

// ---- reductions ----
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// sum |x| (p = 1) or sqrt(sum x^2) (p = 2) over dims in one pass over x, without a temporary of
// x's size (as torch.linalg.vector_norm with ord 1 or 2). The pruners' L1/L2 block metrics.
Tensor norm(const Tensor& x, int p, const std::vector<int64_t>& dims, bool keepdim = false);
// max/min along one dim; gradient goes to the first arg position.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // i64, first on ties
// Minimum and maximum of every row of the last dim in one pass (shape: x's without the last dim;
// NaN in a row gives NaN), as torch.aminmax(x, dim=-1). Statistics only: no gradient.
struct MinMax {
  Tensor min, max;
};
MinMax aminmax(const Tensor& x);
// No NaN and no +-Inf in x (one min/max pass; other dtypes than F32 are always finite).
bool all_finite(const Tensor& x);
// k-th smallest value (1-based) along dim, as torch.kthvalue (values only, gradient to it).
Tensor kthvalue(const Tensor& x, int64_t k, int64_t dim, bool keepdim = false);
struct TopK {
  Tensor values, indices;
};
TopK topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);

// ---- selection ----
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond != 0 picks a
Tensor masked_fill(const Tensor& x, const Tensor& mask, float value);

// ---- compression primitives ----
enum class MaskMethod { Mul, Add };
// Mul: x * mask (gradient g * mask). Add: x + (mask == 1 ? 0 : -1000) (gradient g), NNI's
// additive mask for activations that feed a softmax. The mask broadcasts to x.
Tensor apply_mask(const Tensor& x, const Tensor& mask, MaskMethod method = MaskMethod::Mul);
// (round(clamp(z + x/s, qmin, qmax)) - z) * s, rounding half to even; s and z broadcast to x.
// Straight-through gradient to x only: everywhere, or only inside [qmin, qmax] when clip_grad
// (NNI's clamp_round and qat_clamp_round).
Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point, float qmin,
                     float qmax, bool clip_grad);
// Any straight-through quantizer (QuantMethod, backend.h). The gradient reaches x as the method
// says, the scale for Lsq/LsqPlus and the zero point for LsqPlus (summed to their shape).
Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point, const QuantArgs& q);

// Sums a broadcast gradient back to `shape` (the reverse of broadcasting).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace shrink
