// Datasets of labelled examples for classification: the abstract interface the DataLoader
// reads from, an in-memory TensorDataset, a deterministic synthetic dataset for tests, and
// Subset for working on part of a dataset.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::data {

struct Example {
  Tensor input;  // f32, shape example_shape()
  int64_t label = 0;
};

struct Batch {
  Tensor inputs;   // f32 [B, ...example_shape]
  Tensor labels;   // i64 [B]
  Tensor indices;  // i64 [B]: each sample's index in the loader's dataset (set by DataLoader)
  // Samples in the global batch this one is a shard of (DataLoader::set_shard); the batch's own
  // size when it is not a shard, or 0 when no loader set it.
  int64_t global_size = 0;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t i) const = 0;
  virtual Shape example_shape() const = 0;
  // Gathers the examples at `indices` into one batch. The default stacks get(i); datasets that
  // hold their data in memory override it to copy rows directly, since per-example tensors
  // dominate loading time for small inputs.
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;

 protected:
  // Throws an Error naming `who` when i is outside [0, size()).
  void check_index(int64_t i, const char* who) const;
};

// Examples held as rows of one f32 tensor [N, ...] with i64 labels [N].
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor inputs, Tensor labels);

  int64_t size() const override { return inputs_.size(0); }
  Example get(int64_t i) const override;  // a copy, so callers may modify it freely
  Shape example_shape() const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  const Tensor& inputs() const { return inputs_; }
  const Tensor& labels() const { return labels_; }

 private:
  Tensor inputs_;
  Tensor labels_;
  int64_t row_elems_ = 0;  // floats per example
};

// n examples of `example_shape` in `classes` classes: each class has a fixed random prototype
// (standard normal) and an example is its class's prototype plus 0.5 * standard normal noise,
// so a small model can learn it. Labels are drawn uniformly. The same arguments always give
// the same data.
TensorDataset make_synthetic_classification(int64_t n, Shape example_shape, int64_t classes,
                                             uint64_t seed);

// A view of `base` through an index list; batches go through base's get_batch so an in-memory
// base keeps its fast path.
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  // The first min(k, base->size()) examples. Clamping lets callers pass an example budget
  // ("at most k") without knowing the dataset's size first.
  static Subset first(std::shared_ptr<const Dataset> base, int64_t k);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t i) const override;
  Shape example_shape() const override { return base_->example_shape(); }
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

}  // namespace shrink::data
