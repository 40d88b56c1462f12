// The kernel interface: one virtual entry point per primitive, implemented once for the CPU
// (framework/cpu/) and once for CUDA (cuda/). Ops (framework/ops/) check shapes, allocate the
// output, call backend(device).<kernel>(...) and record autograd; kernels never check shapes.
// All tensors handed to a kernel are contiguous and live on the backend's device.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Abs, Sign, Round, Relu, Relu6, Gelu, Sigmoid, Tanh,
  Clamp,      // p0 = lo, p1 = hi
  PowScalar,  // p0 = exponent
  AddScalar,  // p0 = value
  MulScalar,  // p0 = value
};
// MaskAdd: a + (b == 1 ? 0 : -1000), NNI's additive mask for pre-softmax activations.
enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Pow, Max, Min, Gt, Lt, Ge, Le, Eq, MaskAdd };
// SumAbs and SumSquares sum |x| and x*x in the same pass (the L1 and L2 norms without a
// temporary the size of x).
enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, SumAbs, SumSquares };
inline bool is_sum_reduction(ReduceOp op) { return op != ReduceOp::Max && op != ReduceOp::Min; }

// The straight-through quantizers (NNI's quantization apply methods), per element with scale s
// and zero point z; formulas in scalar_ops.h (quant_value, quant_grad).
enum class QuantMethod : uint8_t {
  ClampRound,     // (round(clamp(z + x/s, qmin, qmax)) - z) * s;  gx = g everywhere
  QatClampRound,  // the same;  gx = g only where qmin <= z + x/s <= qmax
  Lsq,            // round(clamp(x/s, qmin, qmax)) * s (z unused);  gx, and gs (learned step)
  LsqPlus,        // (round(clamp(x/s + z, qmin, qmax)) - z) * s;  gx, gs and gz (learned offset)
  DoReFaOutput,   // ClampRound(clamp(x, 0, 1));  gx = g on [0, 1]
  Bnn,            // sign(x) with sign(0) = +1 (s, z unused);  gx = g
  BnnOutput,      // the same;  gx = g only where |x| <= 1
  Truncate,       // trunc(x/s) * s, v1's NaiveQuantizer (a cast to int8);  gx = g
};
// Knowledge-distillation losses of a student against a teacher, row by row (distill.h ops).
enum class DistillLoss : uint8_t { Kl, Mse };

struct QuantArgs {
  QuantMethod method = QuantMethod::ClampRound;
  float qmin = 0.f, qmax = 0.f;
  float grad_scale = 1.f;  // LSQ/LSQ+: factor on the scale gradient, 1/sqrt(qmax * numel)
};

// Broadcast descriptor: the output shape and, per input, the input strides in output index
// space (0 on broadcast dims). Dims are already merged where possible.
struct Broadcast {
  Shape out;
  std::vector<int64_t> a_strides, b_strides;
};
Broadcast make_broadcast(const Shape& a, const Shape& b, const char* op);
// The index space `out` with operand strides sa and sb, simplified: size-1 dims dropped and
// neighbouring dims merged where both operands step through them as through one dim (so a
// per-channel [O, 1, 1, 1] broadcast to [O, I, 3, 3] is one run of 9*I per channel); at least
// one dim. make_broadcast's result is already in this form.
Broadcast simplify_index_space(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb);

struct Conv2dParams {
  int64_t n, c, h, w;        // input
  int64_t oc, kh, kw;        // weight [oc, c/groups, kh, kw]
  int64_t oh, ow;            // output
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
};

struct Pool2dParams {
  int64_t n, c, h, w, oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w;
  bool count_include_pad = true;
};

// What a batch norm may fuse after its normalisation: y = relu(bn(x) + residual), each part
// optional (framework/ops/ops.h batch_norm_relu). The backward recomputes the pre-activation
// bn(x) + residual from x with the forward's own inline expression (framework/cpu/channel_affine.h;
// one explicit fmaf in CUDA), so its ReLU mask is the forward's bit for bit, and no intermediate
// tensor is kept.
struct BatchNormEpilogue {
  const Tensor* residual = nullptr;  // the shape of x
  bool relu = false;
};

// Integer inference (framework/ops/int8.h): y = epilogue(sum_k u[k] * w[n][k]) with exact 32-bit
// sums of unsigned input bytes u and signed weights w (what AVX-512 VNNI's vpdpbusd computes).
// The input is quantized on entry as the fake quantizers do (scalar_ops.h quant_forward):
//   q = nearbyint(clamp(in_zero_point + x / in_scale, in_qmin, in_qmax)),  u = q + in_offset
// (in_offset moves a signed range into 0..255). Per output channel n, the epilogue is
//   y = float(acc - (in_zero_point + in_offset) * col_sum[n]) * scale[n] + bias[n]
//   y = (nearbyint(clamp(out_zero_point + y / out_scale, out_qmin, out_qmax)) - out_zero_point)
//       * out_scale                                               (if out_quant: requantization)
//   y = y * post_mul[n] + post_add[n]                             (if defined: a folded batch norm)
//   y = max(y, 0)                                                 (if relu)
// with scale[n] = in_scale * weight_scale[n], so y is what the fake-quantized float layer gives.
// With out_bytes, y leaves as the next int8 layer's input bytes instead (a convolution's in NHWC
// order): nearbyint(clamp(next_zero_point + y / next_scale, next_qmin, next_qmax)) + next_offset,
// exactly what that layer would make of the float y.
struct Int8Layer {
  int64_t n = 0, k = 0;  // output features (channels) and reduction length
  float in_scale = 1.f, in_zero_point = 0.f, in_qmin = 0.f, in_qmax = 255.f;
  int in_offset = 0;
  Tensor packed;   // the weights in the backend's layout (Backend::int8_pack)
  Tensor col_sum;  // I32 [n]
  Tensor scale;    // F32 [n]
  Tensor bias, post_mul, post_add;  // F32 [n], or undefined
  bool out_quant = false;
  float out_scale = 1.f, out_zero_point = 0.f, out_qmin = 0.f, out_qmax = 0.f;
  bool relu = false;
  bool out_bytes = false;
  float next_scale = 1.f, next_zero_point = 0.f, next_qmin = 0.f, next_qmax = 255.f;
  int next_offset = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p) = 0;
  // Copies between this device and host memory (either direction) or within the device.
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy(void* dst, const void* src, size_t nbytes) = 0;
  virtual void synchronize() {}

  virtual void fill(Tensor& out, float value) = 0;
  virtual void convert(const Tensor& src, Tensor& dst) = 0;  // dtype conversion
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& y, float p0, float p1) = 0;
  // gx = gy * dy/dx, from x and y (whichever the formula needs).
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                              Tensor& gx, float p0, float p1) = 0;
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Broadcast& bc,
                      Tensor& out) = 0;
  // Reduction of x viewed as [outer, n, inner] along n into out [outer, inner].
  // For Max/Min, `index` (i64, may be undefined) receives the arg position.
  virtual void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                      Tensor& out, Tensor* index) = 0;
  // Sums `grad` (shape of the broadcast output) down to `out` whose strides in output index
  // space are `out_strides` (0 on reduced dims).
  virtual void sum_to(const Tensor& grad, const Shape& grad_shape,
                      const std::vector<int64_t>& out_strides, Tensor& out) = 0;
  // Materialises a broadcast: out[i] = x[broadcast index].
  virtual void expand(const Tensor& x, const std::vector<int64_t>& x_strides, Tensor& out) = 0;
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  virtual void permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) = 0;
  // Copies a [outer, src_n, inner] block into dst [outer, dst_n, inner] at offset along n
  // (or the reverse when `to_src` is true). Used by cat, stack, slice and their gradients.
  virtual void copy_block(const Tensor& src, int64_t outer, int64_t src_n, int64_t inner,
                          Tensor& dst, int64_t dst_n, int64_t offset, int64_t step,
                          bool to_src) = 0;

  // C[M,N] = alpha * op(A) op(B) + beta * C, row-major, lda/ldb/ldc in elements.
  virtual void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                    float* c, int64_t ldc) = 0;

  virtual void conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                              const Tensor* bias, Tensor& y) = 0;
  virtual void conv2d_backward_input(const Conv2dParams& p, const Tensor& gy, const Tensor& w,
                                     Tensor& gx) = 0;
  virtual void conv2d_backward_weight(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                                      Tensor& gw) = 0;
  // Both gradients at once (gx or gw may be null, not both). Backends that share work between
  // the two (the CPU's NHWC copy of gy) override it; this default calls the two methods above.
  virtual void conv2d_backward(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                               const Tensor& w, Tensor* gx, Tensor* gw);

  // Inference only: conv2d_forward, then batch_norm_apply on y with an evaluation-mode batch
  // norm's statistics and the epilogue (ops.h conv2d_batch_norm). This default runs the two
  // kernels, the second in place; the CPU applies the normalisation to each image while the
  // convolution's output pass still has it in cache.
  virtual void conv2d_batch_norm_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                         const Tensor* bias, const Tensor& mean,
                                         const Tensor& invstd, const Tensor* bn_weight,
                                         const Tensor* bn_bias, const BatchNormEpilogue& epilogue,
                                         Tensor& y);

  virtual void max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y,
                                  Tensor& index) = 0;
  virtual void max_pool2d_backward(const Pool2dParams& p, const Tensor& gy, const Tensor& index,
                                   Tensor& gx) = 0;
  virtual void avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) = 0;
  virtual void avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx) = 0;
  // Adaptive average pooling uses PyTorch's start/end formula per output cell.
  virtual void adaptive_avg_pool2d_forward(const Pool2dParams& p, const Tensor& x,
                                           Tensor& y) = 0;
  virtual void adaptive_avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy,
                                            Tensor& gx) = 0;

  // Normalisation over x viewed as [outer, c, inner] per channel c (batch norm) — writes the
  // per-channel mean and inverse std used (batch statistics in training).
  virtual void batch_norm_stats(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                Tensor& mean, Tensor& var_biased) = 0;
  virtual void batch_norm_apply(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                const Tensor& mean, const Tensor& invstd, const Tensor* weight,
                                const Tensor* bias, const BatchNormEpilogue& epilogue,
                                Tensor& y) = 0;
  // gy is the gradient of the epilogue's output; gresidual (with a residual) receives the
  // gradient of the residual: gy through the ReLU's mask.
  virtual void batch_norm_backward(const Tensor& x, const Tensor& gy, int64_t outer, int64_t c,
                                   int64_t inner, const Tensor& mean, const Tensor& invstd,
                                   const Tensor* weight, const Tensor* bias,
                                   const BatchNormEpilogue& epilogue, bool training, Tensor& gx,
                                   Tensor* gweight, Tensor* gbias, Tensor* gresidual) = 0;
  // Layer norm over the last `n` elements of each of `rows` rows.
  virtual void layer_norm_forward(const Tensor& x, int64_t rows, int64_t n, const Tensor* weight,
                                  const Tensor* bias, float eps, Tensor& y, Tensor& mean,
                                  Tensor& invstd) = 0;
  virtual void layer_norm_backward(const Tensor& x, const Tensor& gy, int64_t rows, int64_t n,
                                   const Tensor& mean, const Tensor& invstd, const Tensor* weight,
                                   Tensor& gx, Tensor* gweight, Tensor* gbias) = 0;

  // Softmax over x viewed as [outer, n, inner] along n.
  virtual void softmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log,
                       Tensor& y) = 0;
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, int64_t outer, int64_t n,
                                int64_t inner, bool log, Tensor& gx) = 0;
  // Negative log-likelihood per row of logp [rows, classes]; targets i64; ignore_index skipped.
  // Writes loss per row (0 for ignored) into `loss`.
  virtual void nll_forward(const Tensor& logp, const Tensor& target, int64_t ignore_index,
                           Tensor& loss) = 0;
  virtual void nll_backward(const Tensor& target, const Tensor& gloss, int64_t ignore_index,
                            Tensor& glogp) = 0;

  virtual void embedding_forward(const Tensor& weight, const Tensor& index, Tensor& y) = 0;
  virtual void embedding_backward(const Tensor& gy, const Tensor& index, Tensor& gweight) = 0;

  // Distillation loss of student s against teacher t, both [rows, n], per row, with the gradient
  // computed in the same pass (the op scales both):
  //   Kl:  loss[r] = sum_j pt_j (log pt_j - log ps_j), p = softmax(x / T) over the row (0 log 0 = 0);
  //        grad[r, j] = (ps_j - pt_j) / T
  //   Mse: loss[r] = sum_j (s_j - t_j)^2;  grad[r, j] = 2 (s_j - t_j)
  virtual void distill_loss(DistillLoss kind, const Tensor& s, const Tensor& t, int64_t rows, int64_t n,
                            float temperature, Tensor& loss, Tensor& grad) = 0;
  // Minimum and maximum of each row of x [rows, n] (n >= 1) into mn, mx [rows]; a row holding a
  // NaN gives NaN for both (torch.aminmax).
  virtual void min_max_rows(const Tensor& x, int64_t rows, int64_t n, Tensor& mn, Tensor& mx) = 0;
  // The k-th smallest value (1-based k) along the last dim of x [rows, n] into out [rows].
  virtual void kth_value(const Tensor& x, int64_t rows, int64_t n, int64_t k, Tensor& out,
                         Tensor& index) = 0;
  // Indices of the k largest (or smallest) values along the last dim, sorted, ties by index.
  virtual void topk(const Tensor& x, int64_t rows, int64_t n, int64_t k, bool largest,
                    Tensor& values, Tensor& index) = 0;

  // Fused optimizer updates on flat parameter tensors.
  virtual void sgd_step(Tensor& param, const Tensor& grad, Tensor* momentum_buf, float lr,
                        float momentum, float dampening, float weight_decay, bool nesterov,
                        bool first_step) = 0;
  virtual void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr,
                         float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                         int64_t step) = 0;

  // Straight-through fake quantization (QuantArgs::method), with scale s and zero point z (same
  // shape) broadcast to x as described by `bc` (x as a, s as b). Returns false only when it knows
  // that the backward is the identity for this x (no element fell where the method zeroes the
  // gradient, and the method has no scale gradient), so the op can skip the backward pass; a
  // backend that does not track this returns true.
  virtual bool fake_quant(const QuantArgs& q, const Tensor& x, const Tensor& scale,
                          const Tensor& zero_point, const Broadcast& bc, Tensor& y) = 0;
  // gx = dL/dx. gscale / gzero (x's shape, null when not wanted): each element's contribution to
  // dL/ds and dL/dz; the op sums them to the scale's shape.
  virtual void fake_quant_backward(const QuantArgs& q, const Tensor& x, const Tensor& scale,
                                   const Tensor& zero_point, const Broadcast& bc, const Tensor& gy,
                                   Tensor& gx, Tensor* gscale, Tensor* gzero) = 0;

  // Integer inference (Int8Layer). Only the CPU has these kernels; the defaults say so.
  // int8_pack: the I8 weight matrix w [n, k] (row-major, host memory) in the backend's layout.
  virtual Tensor int8_pack(const Tensor& w);
  // x [m, k] -> y [m, n].
  virtual void int8_linear(const Int8Layer& l, const Tensor& x, Tensor& y);
  // Convolution with groups = 1; the weights were packed as [oc, kh, kw, c] (channel fastest).
  // x: F32 NCHW, or U8 NHWC bytes already in the layer's input grid; y: F32 NCHW, or U8 NHWC
  // (out_bytes).
  virtual void int8_conv2d(const Conv2dParams& p, const Int8Layer& l, const Tensor& x, Tensor& y);
  // Max pooling of U8 NHWC bytes (p.n, p.c, ... as for NCHW); padding never wins a window.
  virtual void int8_max_pool2d(const Pool2dParams& p, const Tensor& x, Tensor& y);
};

Backend& backend(Device device);
// Registers the CUDA backend (called by the cuda/ library when it is linked in).
void register_backend(Device device, Backend* impl);
bool backend_available(Device device);

}  // namespace shrink
