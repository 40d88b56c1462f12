#include "framework/nn/layers.h"

#include <cmath>

#include "framework/core/autograd.h"

namespace shrink::nn {

namespace {
// PyTorch's default for Linear/Conv: kaiming_uniform(a=sqrt(5)) on the weight, which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
Tensor fan_in_uniform(const Shape& shape, int64_t fan_in) {
  float bound = fan_in > 0 ? 1.f / std::sqrt(static_cast<float>(fan_in)) : 0.f;
  return uniform(shape, -bound, bound);
}
}  // namespace

Linear::Linear(int64_t in, int64_t out, bool bias) : in_features(in), out_features(out) {
  SHRINK_CHECK(in > 0 && out > 0, "Linear: features must be positive, got ", in, " -> ", out);
  register_parameter("weight", fan_in_uniform({out, in}, in));
  register_parameter("bias", bias ? fan_in_uniform({out}, in) : Tensor());
}

Value Linear::forward(const std::vector<Value>& inputs) {
  return linear(input_tensor(inputs, 0), param("weight"), param("bias"));
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool bias)
    : in_channels(in), out_channels(out), kernel_size(k), stride(stride), padding(padding),
      dilation(dilation), groups(groups) {
  SHRINK_CHECK(in > 0 && out > 0 && k > 0, "Conv2d: channels and kernel must be positive");
  SHRINK_CHECK(groups > 0 && in % groups == 0 && out % groups == 0, "Conv2d: groups ", groups,
               " must divide in_channels ", in, " and out_channels ", out);
  int64_t fan_in = in / groups * k * k;
  register_parameter("weight", fan_in_uniform({out, in / groups, k, k}, fan_in));
  register_parameter("bias", bias ? fan_in_uniform({out}, fan_in) : Tensor());
}

Conv2dOptions Conv2d::options() const {
  Conv2dOptions o;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = padding;
  o.dil_h = o.dil_w = dilation;
  o.groups = groups;
  return o;
}

Value Conv2d::forward(const std::vector<Value>& inputs) {
  return conv2d(input_tensor(inputs, 0), param("weight"), param("bias"), options());
}

BatchNorm::BatchNorm(int64_t n, int64_t expected_rank, float eps, float momentum, bool affine,
                     bool track)
    : num_features(n), eps(eps), momentum(momentum), expected_rank_(expected_rank) {
  register_parameter("weight", affine ? Tensor::ones({n}) : Tensor());
  register_parameter("bias", affine ? Tensor::zeros({n}) : Tensor());
  register_buffer("running_mean", track ? Tensor::zeros({n}) : Tensor());
  register_buffer("running_var", track ? Tensor::ones({n}) : Tensor());
  register_buffer("num_batches_tracked", track ? Tensor::zeros({}, DType::I64) : Tensor());
}

Value BatchNorm::forward(const std::vector<Value>& inputs) {
  return normalise(input_tensor(inputs, 0), Tensor(), false);
}

Tensor BatchNorm::forward_relu(const Tensor& x, const Tensor& residual) { return normalise(x, residual, true); }

Tensor BatchNorm::normalise(const Tensor& x, const Tensor& residual, bool relu) {
  if (expected_rank_ == 4)
    SHRINK_CHECK(x.dim() == 4, type_name(), ": expected [N, C, H, W] input, got ", x.shape());
  else
    SHRINK_CHECK(x.dim() == 2 || x.dim() == 3, type_name(), ": expected [N, C] or [N, C, L] input, got ",
                 x.shape());
  SHRINK_CHECK(x.size(1) == num_features, type_name(), "(", num_features, "): input ", x.shape(),
               " has ", x.size(1), " channels");
  Tensor rm = param("running_mean"), rv = param("running_var");
  if (is_training() && rm.defined()) {  // as PyTorch: count batches seen in training
    Tensor& nbt = buffer("num_batches_tracked");
    Tensor host = nbt.to(Device::CPU).contiguous_copy();
    host.data<int64_t>()[0] += 1;
    nbt.copy_(host);
  }
  if (is_training() && batch_statistics_) {
    Tensor y = forward_with(x, batch_statistics_(x));
    if (residual.defined()) y = add(y, residual);
    return relu ? shrink::relu(y) : y;
  }
  // Batch statistics in training, and in evaluation when no running statistics are tracked.
  bool use_batch_stats = is_training() || !rm.defined();
  if (!relu) return batch_norm(x, param("weight"), param("bias"), rm, rv, use_batch_stats, momentum, eps);
  return batch_norm_relu(x, param("weight"), param("bias"), rm, rv, use_batch_stats, momentum, eps, residual);
}

// y = (x - mean) / sqrt(var + eps) * weight + bias with statistics from set_batch_statistics, in
// composite ops (autograd through the statistics too); running statistics updated as the
// batch_norm op does (momentum; the variance unbiased over the whole batch's count).
Tensor BatchNorm::forward_with(const Tensor& x, const BatchStatistics& st) {
  SHRINK_CHECK(st.mean.defined() && st.var.defined() && st.mean.numel() == num_features &&
                   st.var.numel() == num_features && st.count > 0,
               type_name(), "(", num_features, "): the batch statistics given are not ", num_features, " means and ",
               "variances over a non-empty batch");
  Shape per_channel(static_cast<size_t>(x.dim()), 1);
  per_channel[1] = num_features;
  Tensor y = div(sub(x, reshape(st.mean, per_channel)), sqrt(add(reshape(st.var, per_channel), eps)));
  const Tensor w = param("weight"), b = param("bias");
  if (w.defined()) y = mul(y, reshape(w, per_channel));
  if (b.defined()) y = add(y, reshape(b, per_channel));
  Tensor rm = param("running_mean"), rv = param("running_var");
  if (rm.defined()) {
    NoGradGuard ng;
    const float m = momentum;
    const float unbias = st.count > 1 ? static_cast<float>(st.count / (st.count - 1)) : 1.f;
    rm.copy_(add(mul(rm, 1.f - m), mul(st.mean.detach(), m)));
    rv.copy_(add(mul(rv, 1.f - m), mul(st.var.detach(), m * unbias)));
  }
  return y;
}

LayerNorm::LayerNorm(Shape shape, float eps, bool affine) : normalized_shape(shape), eps(eps) {
  register_parameter("weight", affine ? Tensor::ones(shape) : Tensor());
  register_parameter("bias", affine ? Tensor::zeros(shape) : Tensor());
}

Value LayerNorm::forward(const std::vector<Value>& inputs) {
  const Tensor& x = input_tensor(inputs, 0);
  if (removed == 0) return layer_norm(x, normalized_shape, param("weight"), param("bias"), eps);
  SHRINK_CHECK(normalized_shape.size() == 1 && x.dim() >= 1 && x.size(-1) == normalized_shape[0],
               "LayerNorm with removed features: input ", x.shape(), " must end in ", normalized_shape);
  // Two passes as the fused op, the R removed constants c_j (mean c, M2 about it) included:
  // mean = (sum x + R c) / D, var = (sum (x - mean)^2 + sum (c_j - mean)^2) / D, where the
  // second sum is M2 + R (mean - c)^2 (no cancellation however large the constants).
  const float count = static_cast<float>(normalized_shape[0] + removed), r = static_cast<float>(removed);
  const Tensor mu = mul(add(sum(x, {-1}, true), static_cast<float>(removed * removed_mean)), 1.f / count);
  const Tensor xc = sub(x, mu);
  const Tensor off = add(mu, static_cast<float>(-removed_mean));
  const Tensor absent = add(mul(mul(off, off), r), static_cast<float>(removed_m2));
  const Tensor var = mul(add(sum(mul(xc, xc), {-1}, true), absent), 1.f / count);
  Tensor y = div(xc, sqrt(add(var, eps)));
  if (param("weight").defined()) y = mul(y, param("weight"));
  if (param("bias").defined()) y = add(y, param("bias"));
  return y;
}

Embedding::Embedding(int64_t num, int64_t dim) : num_embeddings(num), embedding_dim(dim) {
  SHRINK_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive");
  register_parameter("weight", randn({num, dim}));
}

Value Embedding::forward(const std::vector<Value>& inputs) {
  return embedding(param("weight"), input_tensor(inputs, 0));
}

Value Activation::forward(const std::vector<Value>& inputs) { return fn_(input_tensor(inputs, 0)); }
Value Identity::forward(const std::vector<Value>& inputs) { return input_tensor(inputs, 0); }
Value Softmax::forward(const std::vector<Value>& inputs) {
  return softmax(input_tensor(inputs, 0), dim);
}
Value Dropout::forward(const std::vector<Value>& inputs) {
  return dropout(input_tensor(inputs, 0), p, is_training(), gen_);
}
Value MaxPool2d::forward(const std::vector<Value>& inputs) {
  return max_pool2d(input_tensor(inputs, 0), kernel, stride, padding);
}
Value AvgPool2d::forward(const std::vector<Value>& inputs) {
  return avg_pool2d(input_tensor(inputs, 0), kernel, stride, padding);
}
Value AdaptiveAvgPool2d::forward(const std::vector<Value>& inputs) {
  return adaptive_avg_pool2d(input_tensor(inputs, 0), out_h, out_w);
}
Value Flatten::forward(const std::vector<Value>& inputs) {
  return flatten(input_tensor(inputs, 0), start_dim, end_dim);
}

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h) : embed_dim(e), num_heads(h), head_dim(h > 0 ? e / h : 0) {
  SHRINK_CHECK(e > 0 && h > 0 && e % h == 0, "MultiheadAttention: embed_dim ", e,
               " must be divisible by num_heads ", h);
  q_proj = register_module("q_proj", std::make_shared<Linear>(e, e));
  k_proj = register_module("k_proj", std::make_shared<Linear>(e, e));
  v_proj = register_module("v_proj", std::make_shared<Linear>(e, e));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e));
}

Value MultiheadAttention::forward(const std::vector<Value>& inputs) {
  const Tensor& q_in = input_tensor(inputs, 0);
  const Tensor& k_in = inputs.size() > 1 ? input_tensor(inputs, 1) : q_in;
  const Tensor& v_in = inputs.size() > 2 ? input_tensor(inputs, 2) : k_in;
  const int64_t width = q_proj->in_features, inner = num_heads * head_dim;
  SHRINK_CHECK(q_in.dim() == 3 && q_in.size(2) == width, "MultiheadAttention: query must be [B, L, ", width, "], got ",
               q_in.shape());
  SHRINK_CHECK(k_in.dim() == 3 && v_in.dim() == 3 && k_in.size(0) == q_in.size(0) && v_in.size(0) == q_in.size(0) &&
                   k_in.size(1) == v_in.size(1) && k_in.size(2) == k_proj->in_features &&
                   v_in.size(2) == v_proj->in_features,
               "MultiheadAttention: key ", k_in.shape(), " and value ", v_in.shape(), " must be [B, S, ",
               k_proj->in_features, "] and [B, S, ", v_proj->in_features, "] matching query ", q_in.shape());
  SHRINK_CHECK(q_proj->out_features == inner && k_proj->out_features == inner && v_proj->out_features == inner &&
                   out_proj->in_features == inner,
               "MultiheadAttention: projections must have ", num_heads, " heads x ", head_dim, " = ", inner,
               " features, got q ", q_proj->out_features, ", k ", k_proj->out_features, ", v ", v_proj->out_features,
               ", out ", out_proj->in_features);
  const int64_t b = q_in.size(0), l = q_in.size(1), s = k_in.size(1), hd = head_dim;
  auto heads = [&](const Tensor& t, int64_t len) {  // [B, len, H*hd] -> [B, H, len, hd]
    return permute(reshape(t, {b, len, num_heads, hd}), {0, 2, 1, 3});
  };
  Tensor q = heads((*q_proj)(q_in), l);
  Tensor k = heads((*k_proj)(k_in), s);
  Tensor v = heads((*v_proj)(v_in), s);
  Tensor scores = mul(matmul(q, transpose(k, 2, 3)), 1.f / std::sqrt(static_cast<float>(hd)));
  Tensor attn = softmax(scores, -1);                       // [B, H, L, S]
  Tensor ctx = matmul(attn, v);                            // [B, H, L, hd]
  Tensor merged = reshape(permute(ctx, {0, 2, 1, 3}), {b, l, inner});
  Tensor out = (*out_proj)(merged);
  Tensor avg = mean(attn, {1});
  return Value::list({out, avg});
}

}  // namespace shrink::nn
