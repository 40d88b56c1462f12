// Dataset implementations: batch gathering, TensorDataset, the synthetic dataset and Subset.
#include "framework/data/dataset.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "framework/core/random.h"

namespace shrink::data {

namespace {

Shape batch_shape(int64_t b, const Shape& example_shape) {
  Shape s;
  s.reserve(example_shape.size() + 1);
  s.push_back(b);
  s.insert(s.end(), example_shape.begin(), example_shape.end());
  return s;
}

}  // namespace

void Dataset::check_index(int64_t i, const char* who) const {
  int64_t n = size();
  SHRINK_CHECK(i >= 0 && i < n, who, ": index ", i, " out of range for a dataset of ", n,
               " examples");
}

Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  const Shape shape = example_shape();
  const int64_t row = shape_numel(shape);
  const int64_t b = static_cast<int64_t>(indices.size());
  Batch out;
  out.inputs = Tensor::empty(batch_shape(b, shape), DType::F32);
  out.labels = Tensor::empty({b}, DType::I64);
  float* dst = out.inputs.data<float>();
  int64_t* lab = out.labels.data<int64_t>();
  for (int64_t k = 0; k < b; ++k) {
    check_index(indices[k], "Dataset::get_batch");
    Example ex = get(indices[k]);
    // A dataset whose get() disagrees with example_shape() would otherwise corrupt memory.
    SHRINK_CHECK(ex.input.defined() && ex.input.device() == Device::CPU &&
                     ex.input.dtype() == DType::F32 && ex.input.shape() == shape,
                 "Dataset::get_batch: example ", indices[k], " is ",
                 ex.input.defined() ? ex.input.describe() : std::string("undefined"),
                 " on ", ex.input.defined() ? device_name(ex.input.device()) : "-",
                 ", expected cpu f32", shape);
    if (row > 0) std::memcpy(dst + k * row, ex.input.data<float>(), row * sizeof(float));
    lab[k] = ex.label;
  }
  return out;
}

// ---- TensorDataset ----

TensorDataset::TensorDataset(Tensor inputs, Tensor labels)
    : inputs_(std::move(inputs)), labels_(std::move(labels)) {
  SHRINK_CHECK(inputs_.defined() && labels_.defined(),
               "TensorDataset: inputs and labels must both be defined");
  SHRINK_CHECK(inputs_.device() == Device::CPU && labels_.device() == Device::CPU,
               "TensorDataset: inputs and labels must be on the CPU, got ",
               device_name(inputs_.device()), " and ", device_name(labels_.device()));
  SHRINK_CHECK(inputs_.dtype() == DType::F32, "TensorDataset: inputs must be f32, got ",
               inputs_.describe());
  SHRINK_CHECK(labels_.dtype() == DType::I64, "TensorDataset: labels must be i64, got ",
               labels_.describe());
  SHRINK_CHECK(inputs_.dim() >= 1, "TensorDataset: inputs need a leading example dim, got ",
               inputs_.describe());
  SHRINK_CHECK(labels_.dim() == 1 && labels_.size(0) == inputs_.size(0),
               "TensorDataset: inputs ", inputs_.shape(), " and labels ", labels_.shape(),
               " must have the same number of examples (labels must be [N])");
  // Data needs no autograd history; dropping it lets a graph that produced inputs be freed.
  inputs_ = inputs_.detach();
  row_elems_ = inputs_.size(0) > 0 ? inputs_.numel() / inputs_.size(0)
                                   : shape_numel(example_shape());
}

Shape TensorDataset::example_shape() const {
  const Shape& s = inputs_.shape();
  return Shape(s.begin() + 1, s.end());
}

Example TensorDataset::get(int64_t i) const {
  check_index(i, "TensorDataset::get");
  Example ex;
  ex.input = Tensor::empty(example_shape(), DType::F32);
  if (row_elems_ > 0)
    std::memcpy(ex.input.data<float>(), inputs_.data<float>() + i * row_elems_,
                row_elems_ * sizeof(float));
  ex.label = labels_.data<int64_t>()[i];
  return ex;
}

Batch TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  const int64_t b = static_cast<int64_t>(indices.size());
  Batch out;
  out.inputs = Tensor::empty(batch_shape(b, example_shape()), DType::F32);
  out.labels = Tensor::empty({b}, DType::I64);
  const float* src = inputs_.data<float>();
  const int64_t* src_lab = labels_.data<int64_t>();
  float* dst = out.inputs.data<float>();
  int64_t* lab = out.labels.data<int64_t>();
  for (int64_t k = 0; k < b; ++k) {
    const int64_t i = indices[k];
    check_index(i, "TensorDataset::get_batch");
    if (row_elems_ > 0)
      std::memcpy(dst + k * row_elems_, src + i * row_elems_, row_elems_ * sizeof(float));
    lab[k] = src_lab[i];
  }
  return out;
}

// ---- synthetic data ----

TensorDataset make_synthetic_classification(int64_t n, Shape example_shape, int64_t classes,
                                             uint64_t seed) {
  SHRINK_CHECK(n >= 0, "make_synthetic_classification: n must be >= 0, got ", n);
  SHRINK_CHECK(classes >= 1, "make_synthetic_classification: classes must be >= 1, got ",
               classes);
  for (int64_t d : example_shape)
    SHRINK_CHECK(d > 0, "make_synthetic_classification: example shape ", example_shape,
                 " must have positive dims");
  const int64_t row = shape_numel(example_shape);
  Generator gen(seed);
  // Prototypes are drawn first so they depend only on the seed, not on n.
  std::vector<float> protos(static_cast<size_t>(classes * row));
  for (float& v : protos) v = gen.normal();

  Tensor inputs = Tensor::empty(batch_shape(n, example_shape), DType::F32);
  Tensor labels = Tensor::empty({n}, DType::I64);
  float* x = inputs.data<float>();
  int64_t* y = labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = gen.randint(classes);
    y[i] = c;
    const float* p = protos.data() + c * row;
    for (int64_t j = 0; j < row; ++j) x[i * row + j] = p[j] + 0.5f * gen.normal();
  }
  return TensorDataset(std::move(inputs), std::move(labels));
}

// ---- Subset ----

Subset::Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  SHRINK_CHECK(base_ != nullptr, "Subset: base dataset is null");
  const int64_t n = base_->size();
  for (int64_t i : indices_)
    SHRINK_CHECK(i >= 0 && i < n, "Subset: index ", i, " out of range for a base dataset of ",
                 n, " examples");
}

Subset Subset::first(std::shared_ptr<const Dataset> base, int64_t k) {
  SHRINK_CHECK(base != nullptr, "Subset::first: base dataset is null");
  SHRINK_CHECK(k >= 0, "Subset::first: k must be >= 0, got ", k);
  std::vector<int64_t> idx(static_cast<size_t>(std::min(k, base->size())));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  return Subset(std::move(base), std::move(idx));
}

Example Subset::get(int64_t i) const {
  check_index(i, "Subset::get");
  return base_->get(indices_[i]);
}

Batch Subset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> mapped(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    check_index(indices[k], "Subset::get_batch");
    mapped[k] = indices_[indices[k]];
  }
  return base_->get_batch(mapped);
}

}  // namespace shrink::data
