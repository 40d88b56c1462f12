// Tensor: a shape, a dtype and a device over shared storage. Always contiguous row-major;
// views (reshape, leading-dim slices) share storage with an element offset.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/error.h"

namespace shrink {

enum class DType : uint8_t { F32, I64, I32, U8, I8 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType d);
const char* dtype_name(DType d);
const char* device_name(Device d);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
// Normalises a possibly negative dim against rank, throwing with `op` in the message.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);
// The stride of a contiguous tensor of shape `from` along each dim of `to` when it is broadcast
// to `to` (0 on broadcast dims); throws, naming `op`, when `from` does not broadcast to `to`.
std::vector<int64_t> broadcast_strides(const Shape& from, const Shape& to, const char* op);

// Raw memory block. The deleter knows which allocator it came from.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device = Device::CPU;
  std::function<void(void*)> deleter;
  // Copy-on-write (Tensor::snapshot): a snapshot is a Storage of its own that borrows `data` from
  // the storage in `borrowed_from` (and keeps it alive). The lender lists its snapshots; before
  // an in-place write through any tensor on either, the snapshot gets a copy of the data, so
  // every tensor on each side (views included) keeps seeing its own side's values.
  std::shared_ptr<Storage> borrowed_from;
  std::vector<std::weak_ptr<Storage>> snapshots;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (data && deleter) deleter(data);
  }
};

struct Node;
class Tensor;
// Gradient hooks by id, in registration order (see Tensor::register_hook).
using GradHooks = std::vector<std::pair<uint64_t, std::function<Tensor(const Tensor&)>>>;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (no autograd history) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor scalar(float value, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape);
  static Tensor arange(int64_t n);  // 0..n-1 as f32

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  // Only this handle refers to the data (no other Tensor, view or autograd node), so writing into
  // it in place is invisible anywhere else.
  bool is_unique() const;
  const Shape& shape() const;
  int64_t dim() const;
  int64_t size(int64_t d) const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  std::string describe() const;  // "f32[2, 3]"

  // ---- data access (CPU, checked dtype) ----
  template <typename T>
  T* data() const;
  void* raw_data() const;
  float item() const;
  std::vector<float> to_vector() const;
  std::vector<int64_t> to_vector_i64() const;

  // ---- copies and conversion ----
  Tensor clone() const;     // differentiable copy
  Tensor detach() const;    // same storage, no history
  // A copy that costs nothing until someone writes: no history, and the same data until the
  // first in-place write (copy_, copy_broadcast_, fill_) through any tensor on either side (views
  // and detached handles included); the snapshot then gets its own copy. Writes through data<T>()
  // bypass it, and a pointer from data<T>() of a snapshot is valid until such a write. Not
  // thread-safe (as in-place writes in general). NNI's get_masks clones; Pruner::get_masks
  // snapshots.
  Tensor snapshot() const;
  Tensor contiguous_copy() const;  // plain data copy, no history
  Tensor to(Device device) const;  // differentiable copy to device (self if same device)
  Tensor to(DType dtype) const;    // value conversion, no history
  void copy_(const Tensor& src);   // in-place data copy, shapes must match (no autograd)
  // In-place copy of src broadcast to this shape (as torch's copy_), without a temporary of this
  // size: a per-channel mask into a full-size mask buffer, a bias into every row.
  void copy_broadcast_(const Tensor& src);
  // Moves the data to `device` in place, so every handle to this tensor (optimizers, wrappers)
  // follows it, as module.to() moves .data in PyTorch. Its gradient moves too.
  void move_to_(Device device);
  void fill_(float value);         // in-place (no autograd)
  void zero_() { fill_(0.f); }

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool flag);
  bool is_leaf() const;
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  void zero_grad() const;
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> node) const;
  void backward(const Tensor& grad_output = Tensor()) const;
  // A gradient hook (torch's Tensor.register_hook): `fn` sees the gradient this tensor receives
  // in each backward pass (for a leaf, the pass's total before it is added to grad()) and may
  // return a replacement; an undefined result keeps the gradient. Hooks run in registration
  // order. Returns an id for remove_hook (removing an unknown id does nothing).
  uint64_t register_hook(std::function<Tensor(const Tensor&)> fn) const;
  void remove_hook(uint64_t id) const;

  // ---- identity ----
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  bool shares_storage(const Tensor& o) const;

  // ---- convenience forwarding to ops (see framework/ops/ops.h) ----
  Tensor reshape(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(const std::vector<int64_t>& perm) const;
  Tensor sum() const;
  Tensor mean() const;
  Tensor operator-() const;

 private:
  void check_defined(const char* what) const;
  // Copy-on-write (see snapshot()): before an in-place write, this storage's snapshots, or this
  // storage when it is a snapshot, get their own copy of the data.
  void before_write_();
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  int64_t numel = 0;
  DType dtype = DType::F32;
  bool requires_grad = false;  // leaves only; non-leaves require grad through grad_fn
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  GradHooks grad_hooks;  // leaves only; a non-leaf's hooks live on its grad_fn
};

// Makes a tensor viewing `base`'s storage at `offset` elements with `shape` (no copy).
Tensor make_view(const Tensor& base, const Shape& shape, int64_t offset_elems);

std::ostream& operator<<(std::ostream& os, const Shape& s);
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::ostream& operator<<(std::ostream& os, DType d);
std::ostream& operator<<(std::ostream& os, Device d);

template <typename T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::I64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::U8; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::I8; };

// Calls fn(T{}) with the C++ element type of `d` (float, int64_t, int32_t, uint8_t, int8_t):
// the one place a kernel turns a runtime dtype into a type.
template <typename Fn>
decltype(auto) visit_dtype(DType d, Fn&& fn) {
  switch (d) {
    case DType::F32: return fn(float{});
    case DType::I64: return fn(int64_t{});
    case DType::I32: return fn(int32_t{});
    case DType::U8: return fn(uint8_t{});
    case DType::I8: break;
  }
  return fn(int8_t{});
}

template <typename T>
T* Tensor::data() const {
  check_defined("data");
  SHRINK_CHECK(impl_->dtype == DTypeOf<T>::value, "data<", dtype_name(DTypeOf<T>::value),
               ">: tensor has dtype ", dtype_name(impl_->dtype));
  return static_cast<T*>(raw_data());
}

}  // namespace shrink
