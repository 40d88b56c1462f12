#include "framework/core/tensor.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ostream>
#include <sstream>

#include "framework/core/autograd.h"
#include "framework/core/backend.h"
#include "framework/ops/ops.h"

namespace shrink {

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
    case DType::I8: return 1;
  }
  return 0;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "f32";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::U8: return "u8";
    case DType::I8: return "i8";
  }
  return "?";
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<int64_t> broadcast_strides(const Shape& from, const Shape& to, const char* op) {
  SHRINK_CHECK(to.size() >= from.size(), op, ": cannot broadcast ", from, " to ", to);
  const size_t lead = to.size() - from.size();
  std::vector<int64_t> strides(to.size(), 0);
  int64_t stride = 1;
  for (size_t i = to.size(); i-- > lead;) {
    const int64_t d = from[i - lead];
    SHRINK_CHECK(d == to[i] || d == 1, op, ": cannot broadcast ", from, " to ", to);
    strides[i] = (d == 1 && to[i] != 1) ? 0 : stride;
    stride *= d;
  }
  return strides;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t r = rank == 0 ? 1 : rank;
  SHRINK_CHECK(dim >= -r && dim < r, op, ": dim ", dim, " out of range for rank ", rank);
  return dim < 0 ? dim + r : dim;
}

std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  return os << ']';
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor(" << t.describe();
  if (t.device() == Device::CPU && t.dtype() == DType::F32 && t.numel() <= 16) {
    os << ", {";
    const float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) os << (i ? ", " : "") << p[i];
    os << '}';
  }
  return os << ')';
}

std::ostream& operator<<(std::ostream& os, DType d) { return os << dtype_name(d); }
std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }

static Tensor allocate(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) SHRINK_CHECK(d >= 0, "Tensor::empty: negative dim in ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->numel = shape_numel(shape);
  impl->dtype = dtype;
  auto st = std::make_shared<Storage>();
  st->nbytes = static_cast<size_t>(impl->numel) * dtype_size(dtype);
  st->device = device;
  Backend& be = backend(device);
  st->data = be.allocate(st->nbytes);
  st->deleter = [&be](void* p) { be.deallocate(p); };
  impl->storage = std::move(st);
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return allocate(shape, dtype, device);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = allocate(shape, dtype, device);
  t.fill_(0.f);
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  Tensor t = allocate(shape, dtype, device);
  t.fill_(1.f);
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = allocate(shape, DType::F32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(float value, Device device) { return full({}, value, device); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  SHRINK_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ",
               values.size(), " values for shape ", shape);
  Tensor t = allocate(shape, DType::F32, Device::CPU);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector_i64(const std::vector<int64_t>& values, const Shape& shape) {
  SHRINK_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector_i64: ",
               values.size(), " values for shape ", shape);
  Tensor t = allocate(shape, DType::I64, Device::CPU);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

Tensor Tensor::arange(int64_t n) {
  Tensor t = allocate({n}, DType::F32, Device::CPU);
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i);
  return t;
}

void Tensor::check_defined(const char* what) const {
  SHRINK_CHECK(impl_ != nullptr, "Tensor::", what, ": tensor is undefined");
}

const Shape& Tensor::shape() const {
  check_defined("shape");
  return impl_->shape;
}
int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "Tensor::size")]; }
int64_t Tensor::numel() const {
  check_defined("numel");
  return impl_->numel;
}
DType Tensor::dtype() const {
  check_defined("dtype");
  return impl_->dtype;
}
Device Tensor::device() const {
  check_defined("device");
  return impl_->storage->device;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  std::string s = std::string(dtype_name(dtype())) + shape_str(shape());
  if (device() != Device::CPU) s += std::string("@") + device_name(device());
  return s;
}

void* Tensor::raw_data() const {
  check_defined("raw_data");
  return static_cast<char*>(impl_->storage->data) + impl_->offset * dtype_size(impl_->dtype);
}

bool Tensor::shares_storage(const Tensor& o) const {
  return defined() && o.defined() && impl_->storage == o.impl_->storage;
}

float Tensor::item() const {
  SHRINK_CHECK(numel() == 1, "item: tensor ", describe(), " has ", numel(), " elements");
  Tensor c = device() == Device::CPU ? *this : to(Device::CPU);
  switch (c.dtype()) {
    case DType::F32: return *c.data<float>();
    case DType::I64: return static_cast<float>(*c.data<int64_t>());
    case DType::I32: return static_cast<float>(*c.data<int32_t>());
    case DType::U8: return static_cast<float>(*c.data<uint8_t>());
    case DType::I8: return static_cast<float>(*c.data<int8_t>());
  }
  return 0.f;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = to(DType::F32);
  if (c.device() != Device::CPU) c = c.detach().to(Device::CPU);
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

std::vector<int64_t> Tensor::to_vector_i64() const {
  Tensor c = to(DType::I64);
  if (c.device() != Device::CPU) c = c.detach().to(Device::CPU);
  const int64_t* p = c.data<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

Tensor Tensor::contiguous_copy() const {
  Tensor out = allocate(shape(), dtype(), device());
  backend(device()).copy(out.raw_data(), raw_data(), numel() * dtype_size(dtype()));
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = contiguous_copy();
  if (needs_grad({this})) {
    record(out, OpKind::Copy, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  }
  return out;
}

Tensor Tensor::snapshot() const {
  check_defined("snapshot");
  // Borrow from the storage that owns the data (a snapshot of a snapshot borrows from its lender).
  std::shared_ptr<Storage> lender = impl_->storage->borrowed_from ? impl_->storage->borrowed_from : impl_->storage;
  auto st = std::make_shared<Storage>();
  st->data = lender->data;
  st->nbytes = lender->nbytes;
  st->device = lender->device;
  st->borrowed_from = lender;
  auto& list = lender->snapshots;
  list.erase(std::remove_if(list.begin(), list.end(), [](const std::weak_ptr<Storage>& w) { return w.expired(); }),
             list.end());
  list.push_back(st);
  Tensor s = detach();
  s.impl_->storage = std::move(st);
  return s;
}

namespace {
// A borrowing snapshot storage takes a copy of the data it borrows and stops borrowing.
void give_own_copy(Storage& st) {
  Backend& be = backend(st.device);
  void* own = be.allocate(st.nbytes);
  if (st.nbytes) be.copy(own, st.data, st.nbytes);
  st.data = own;
  st.deleter = [&be](void* p) { be.deallocate(p); };
  st.borrowed_from.reset();
}
}  // namespace

void Tensor::before_write_() {
  check_defined("in-place write");
  Storage& st = *impl_->storage;
  if (st.borrowed_from) {  // writing a snapshot: it stops sharing (its lender keeps a dead entry)
    give_own_copy(st);
    return;
  }
  // Writing a lender: each snapshot still borrowing takes its copy first; one leaves the list
  // only once copied, so an allocation failure loses nothing.
  while (!st.snapshots.empty()) {
    if (auto snap = st.snapshots.back().lock())
      if (snap->borrowed_from.get() == &st) give_own_copy(*snap);
    st.snapshots.pop_back();
  }
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->numel = impl_->numel;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor out = allocate(shape(), dtype(), dev);
  size_t nbytes = numel() * dtype_size(dtype());
  if (dev == Device::CPU) {
    backend(device()).copy_to_host(out.raw_data(), raw_data(), nbytes);
  } else {
    backend(dev).copy_from_host(out.raw_data(), raw_data(), nbytes);
  }
  if (needs_grad({this})) {
    Device src = device();
    record(out, OpKind::ToDevice, {*this},
           [src](const Tensor& g) { return std::vector<Tensor>{g.to(src)}; });
  }
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = allocate(shape(), dt, device());
  backend(device()).convert(*this, out);
  return out;
}

bool Tensor::is_unique() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage && impl_->storage.use_count() == 1;
}

void Tensor::copy_(const Tensor& src) {
  SHRINK_CHECK(src.shape() == shape(), "copy_: source ", src.describe(), " into ", describe());
  Tensor s = src.to(device()).to(dtype());
  before_write_();
  backend(device()).copy(raw_data(), s.raw_data(), numel() * dtype_size(dtype()));
}

void Tensor::copy_broadcast_(const Tensor& src) {
  check_defined("copy_broadcast_");
  SHRINK_CHECK(src.defined(), "copy_broadcast_: undefined source into ", describe());
  if (src.shape() == shape()) return copy_(src);
  const std::vector<int64_t> strides = broadcast_strides(src.shape(), shape(), "copy_broadcast_");
  Tensor s = src.detach().to(device()).to(dtype());
  before_write_();
  // The broadcast reads the source while writing this tensor: a source in the same storage is
  // copied out first.
  if (s.impl_->storage == impl_->storage) s = s.contiguous_copy();
  if (numel() > 0) backend(device()).expand(s, strides, *this);
}

void Tensor::move_to_(Device dev) {
  check_defined("move_to_");
  SHRINK_CHECK(is_leaf(), "move_to_: only leaves (parameters, buffers) move in place, got ", describe());
  if (device() == dev) return;
  Tensor moved = detach().to(dev);
  impl_->storage = moved.impl_->storage;
  impl_->offset = moved.impl_->offset;
  if (impl_->grad) Tensor(impl_->grad).move_to_(dev);
}

void Tensor::fill_(float value) {
  before_write_();
  backend(device()).fill(*this, value);
}

bool Tensor::requires_grad() const {
  return defined() && (impl_->requires_grad || impl_->grad_fn != nullptr);
}

Tensor& Tensor::set_requires_grad(bool flag) {
  check_defined("set_requires_grad");
  SHRINK_CHECK(impl_->grad_fn == nullptr || flag,
               "set_requires_grad(false): only leaves can change requires_grad (use detach)");
  SHRINK_CHECK(!flag || dtype() == DType::F32, "set_requires_grad: only f32 tensors, got ",
               describe());
  impl_->requires_grad = flag;
  return *this;
}

bool Tensor::is_leaf() const { return defined() && impl_->grad_fn == nullptr; }

Tensor Tensor::grad() const {
  check_defined("grad");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) const {
  check_defined("set_grad");
  if (g.defined())
    SHRINK_CHECK(g.shape() == shape(), "set_grad: gradient ", g.describe(), " for ", describe());
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() const {
  check_defined("zero_grad");
  impl_->grad.reset();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  check_defined("grad_fn");
  return impl_->grad_fn;
}

void Tensor::set_grad_fn(std::shared_ptr<Node> node) const {
  check_defined("set_grad_fn");
  impl_->grad_fn = std::move(node);
}

void Tensor::backward(const Tensor& grad_output) const { run_backward(*this, grad_output); }

namespace {
std::atomic<uint64_t> g_next_hook_id{1};
}

uint64_t Tensor::register_hook(std::function<Tensor(const Tensor&)> fn) const {
  check_defined("register_hook");
  SHRINK_CHECK(requires_grad(), "register_hook: ", describe(), " does not require grad, so it never receives one");
  const uint64_t id = g_next_hook_id++;
  GradHooks& hooks = impl_->grad_fn ? impl_->grad_fn->grad_hooks : impl_->grad_hooks;
  hooks.emplace_back(id, std::move(fn));
  return id;
}

void Tensor::remove_hook(uint64_t id) const {
  check_defined("remove_hook");
  GradHooks& hooks = impl_->grad_fn ? impl_->grad_fn->grad_hooks : impl_->grad_hooks;
  for (auto it = hooks.begin(); it != hooks.end(); ++it)
    if (it->first == id) {
      hooks.erase(it);
      return;
    }
}

Tensor make_view(const Tensor& base, const Shape& shape, int64_t offset_elems) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = base.impl()->offset + offset_elems;
  impl->shape = shape;
  impl->numel = shape_numel(shape);
  impl->dtype = base.dtype();
  SHRINK_CHECK((impl->offset + impl->numel) * static_cast<int64_t>(dtype_size(impl->dtype)) <=
                   static_cast<int64_t>(impl->storage->nbytes),
               "make_view: view ", shape, " at offset ", impl->offset, " exceeds storage");
  return Tensor(std::move(impl));
}

Tensor Tensor::reshape(const Shape& s) const { return shrink::reshape(*this, s); }
Tensor Tensor::flatten(int64_t a, int64_t b) const { return shrink::flatten(*this, a, b); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return shrink::transpose(*this, a, b); }
Tensor Tensor::permute(const std::vector<int64_t>& p) const { return shrink::permute(*this, p); }
Tensor Tensor::sum() const { return shrink::sum(*this); }
Tensor Tensor::mean() const { return shrink::mean(*this); }
Tensor Tensor::operator-() const { return shrink::neg(*this); }

}  // namespace shrink
