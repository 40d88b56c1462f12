#include "framework/core/backend.h"

#include <algorithm>
#include <string>

namespace shrink {

Backend* cpu_backend_instance();  // framework/cpu/cpu_backend.cpp

namespace {
Backend* g_cuda = nullptr;
}

Backend& backend(Device device) {
  if (device == Device::CPU) return *cpu_backend_instance();
  SHRINK_CHECK(g_cuda != nullptr,
               "no CUDA device: this build has no CUDA backend or no GPU was found");
  return *g_cuda;
}

void register_backend(Device device, Backend* impl) {
  SHRINK_CHECK(device == Device::CUDA, "register_backend: only the CUDA backend is pluggable");
  g_cuda = impl;
}

void Backend::conv2d_backward(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                              const Tensor& w, Tensor* gx, Tensor* gw) {
  if (gx) conv2d_backward_input(p, gy, w, *gx);
  if (gw) conv2d_backward_weight(p, gy, x, *gw);
}

void Backend::conv2d_batch_norm_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                        const Tensor* bias, const Tensor& mean, const Tensor& invstd,
                                        const Tensor* bn_weight, const Tensor* bn_bias,
                                        const BatchNormEpilogue& epilogue, Tensor& y) {
  conv2d_forward(p, x, w, bias, y);
  batch_norm_apply(y, p.n, p.oc, p.oh * p.ow, mean, invstd, bn_weight, bn_bias, epilogue, y);
}

namespace {
[[noreturn]] void no_int8_kernels(Device d) {
  throw Error(std::string("int8 inference: the ") + device_name(d) +
              " backend has no integer kernels (int8 layers run on the CPU)");
}
}  // namespace

Tensor Backend::int8_pack(const Tensor&) { no_int8_kernels(device()); }
void Backend::int8_linear(const Int8Layer&, const Tensor&, Tensor&) { no_int8_kernels(device()); }
void Backend::int8_conv2d(const Conv2dParams&, const Int8Layer&, const Tensor&, Tensor&) {
  no_int8_kernels(device());
}
void Backend::int8_max_pool2d(const Pool2dParams&, const Tensor&, Tensor&) { no_int8_kernels(device()); }

bool backend_available(Device device) { return device == Device::CPU || g_cuda != nullptr; }

Broadcast make_broadcast(const Shape& a, const Shape& b, const char* op) {
  if (a == b) {  // the common case, without the general walk's six small vectors
    const int64_t n = shape_numel(a);
    if (n == 1) return {{1}, {0}, {0}};
    if (n > 1) return {{n}, {1}, {1}};
  }
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  std::vector<int64_t> sa(rank), sb(rank);
  int64_t stride_a = 1, stride_b = 1;
  for (size_t i = 0; i < rank; ++i) {
    size_t d = rank - 1 - i;
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    SHRINK_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
                 " are not broadcastable");
    out[d] = std::max(da, db);
    if (da == 0 || db == 0) out[d] = 0;
    sa[d] = (da == 1 && out[d] != 1) ? 0 : stride_a;
    sb[d] = (db == 1 && out[d] != 1) ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
  }
  return simplify_index_space(out, sa, sb);
}

Broadcast simplify_index_space(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb) {
  Broadcast bc;
  bc.out.reserve(std::max<size_t>(out.size(), 1));  // one allocation each, not one per push
  bc.a_strides.reserve(std::max<size_t>(out.size(), 1));
  bc.b_strides.reserve(std::max<size_t>(out.size(), 1));
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;  // size-1 dims carry no iteration
    if (!bc.out.empty() && bc.a_strides.back() == sa[d] * out[d] && bc.b_strides.back() == sb[d] * out[d]) {
      bc.out.back() *= out[d];
      bc.a_strides.back() = sa[d];
      bc.b_strides.back() = sb[d];
      continue;
    }
    bc.out.push_back(out[d]);
    bc.a_strides.push_back(sa[d]);
    bc.b_strides.push_back(sb[d]);
  }
  if (bc.out.empty()) bc = {{1}, {0}, {0}};  // a single element
  return bc;
}

}  // namespace shrink
