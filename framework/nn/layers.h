// The standard layers. Parameter names, shapes, defaults and initialisation follow PyTorch so
// that state dicts interchange and NNI configs address the same targets.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/random.h"
#include "framework/nn/module.h"
#include "framework/ops/ops.h"

namespace shrink::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  std::string type_name() const override { return "Linear"; }
  int64_t in_features, out_features;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true);
  std::string type_name() const override { return "Conv2d"; }
  // The conv2d op's options for this layer (what forward passes).
  Conv2dOptions options() const;
  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

// BatchNorm over dim 1; BatchNorm1d takes [N, C] or [N, C, L], BatchNorm2d [N, C, H, W].
class BatchNorm : public Module {
 public:
  BatchNorm(int64_t num_features, int64_t expected_rank, float eps, float momentum, bool affine,
            bool track_running_stats);
  int64_t num_features;
  float eps, momentum;

  // Training-mode batch statistics computed elsewhere: the per-channel mean and biased variance
  // (differentiable, shape [C]) over a batch larger than the input, and how many values per
  // channel that batch holds. Data parallelism's SyncBatchNorm (framework/dist/) computes them
  // over every rank's part of the global batch. Unset (the default): the batch_norm op's own.
  struct BatchStatistics {
    Tensor mean, var;
    double count = 0;
  };
  using BatchStatisticsFn = std::function<BatchStatistics(const Tensor& x)>;
  void set_batch_statistics(BatchStatisticsFn fn) { batch_statistics_ = std::move(fn); }
  bool has_batch_statistics() const { return static_cast<bool>(batch_statistics_); }

 protected:
  Value forward(const std::vector<Value>& inputs) override;

 private:
  // relu(forward(x) + residual) (residual may be undefined) with the fused batch_norm_relu op,
  // running statistics updated as forward does. Only nn::batch_norm_relu (fusion.h) calls it,
  // when no hook could observe the intermediate results.
  Tensor forward_relu(const Tensor& x, const Tensor& residual);
  friend Tensor batch_norm_relu(Module& bn, Module& relu, const Tensor& x, const Tensor& residual);
  Tensor normalise(const Tensor& x, const Tensor& residual, bool relu);
  Tensor forward_with(const Tensor& x, const BatchStatistics& st);
  int64_t expected_rank_;
  BatchStatisticsFn batch_statistics_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t n, float eps = 1e-5f, float momentum = 0.1f, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(n, 1, eps, momentum, affine, track_running_stats) {}
  std::string type_name() const override { return "BatchNorm1d"; }
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t n, float eps = 1e-5f, float momentum = 0.1f, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(n, 4, eps, momentum, affine, track_running_stats) {}
  std::string type_name() const override { return "BatchNorm2d"; }
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
  std::string type_name() const override { return "LayerNorm"; }
  Shape normalized_shape;
  float eps;
  // Features that pruning speedup removed from the (last) normalised dim while they still count in
  // the statistics, each a constant: how many, their mean and the sum of their squared deviations
  // from it (M2). With `removed` > 0 the mean and variance are taken over normalized_shape's
  // features plus these, which is what the unpruned layer computed. 0: a plain LayerNorm.
  int64_t removed = 0;
  double removed_mean = 0.0, removed_m2 = 0.0;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  std::string type_name() const override { return "Embedding"; }
  int64_t num_embeddings, embedding_dim;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

// Parameter-free elementwise layers share one implementation.
class Activation : public Module {
 public:
  using Fn = Tensor (*)(const Tensor&);
  Activation(std::string type, Fn fn) : type_(std::move(type)), fn_(fn) {}
  std::string type_name() const override { return type_; }

 protected:
  Value forward(const std::vector<Value>& inputs) override;

 private:
  std::string type_;
  Fn fn_;
};
struct ReLU : Activation { ReLU() : Activation("ReLU", &relu) {} };
struct ReLU6 : Activation { ReLU6() : Activation("ReLU6", &relu6) {} };
struct GELU : Activation { GELU() : Activation("GELU", &gelu) {} };
struct Sigmoid : Activation { Sigmoid() : Activation("Sigmoid", &sigmoid) {} };
struct Tanh : Activation { Tanh() : Activation("Tanh", &tanh) {} };

class Identity : public Module {
 public:
  std::string type_name() const override { return "Identity"; }

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : dim(dim) {}
  std::string type_name() const override { return "Softmax"; }
  int64_t dim;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f, uint64_t seed = 0) : p(p), gen_(seed) {}
  std::string type_name() const override { return "Dropout"; }
  float p;
  Generator& generator() { return gen_; }
  std::string extra_state() const override { return gen_.state(); }
  void set_extra_state(const std::string& state) override { gen_.set_state(state); }

 protected:
  Value forward(const std::vector<Value>& inputs) override;

 private:
  Generator gen_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0)
      : kernel(kernel), stride(stride < 0 ? kernel : stride), padding(padding) {}
  std::string type_name() const override { return "MaxPool2d"; }
  int64_t kernel, stride, padding;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0)
      : kernel(kernel), stride(stride < 0 ? kernel : stride), padding(padding) {}
  std::string type_name() const override { return "AvgPool2d"; }
  int64_t kernel, stride, padding;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h(out_h), out_w(out_w) {}
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  int64_t out_h, out_w;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim(start_dim), end_dim(end_dim) {}
  std::string type_name() const override { return "Flatten"; }
  int64_t start_dim, end_dim;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

// Batch-first multi-head attention: forward(query, key, value) with [B, L, E] inputs returns
// the list [attn_output [B, L, E], attn_weights averaged over heads [B, L, S]], like PyTorch's
// tuple. Projections are child Linear modules q_proj, k_proj, v_proj, out_proj.
// Scaled dot-product attention over `num_heads` heads of `head_dim` features each. The projections
// map the query/key/value width (`embed_dim` at construction) to num_heads * head_dim features and
// back; pruning speedup removes whole heads (num_heads drops, head_dim stays) and may narrow the
// projections' outer width, so the forward reads the widths off the projections.
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads);
  std::string type_name() const override { return "MultiheadAttention"; }
  std::vector<std::string> arg_names() const override { return {"query", "key", "value"}; }
  int64_t embed_dim, num_heads, head_dim;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;

 protected:
  Value forward(const std::vector<Value>& inputs) override;
};

}  // namespace shrink::nn
