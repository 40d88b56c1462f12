// CPU backend: memory, embedding and fused optimizer updates; the backend singleton.
#include "framework/cpu/cpu_backend.h"

#include <cblas.h>
#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "framework/core/parallel.h"
#include "framework/core/scalar_ops.h"
#include "framework/cpu/host_memory.h"

extern "C" void openblas_set_num_threads(int);

namespace shrink {

Backend* cpu_backend_instance() {
  static cpu::CpuBackend instance;
  return &instance;
}

namespace cpu {

CpuBackend::CpuBackend() {
  // Threading is ours (parallel_for with a fixed partition); OpenBLAS runs single-threaded so
  // results do not depend on its scheduling.
  openblas_set_num_threads(1);
  // Activations are allocated and freed every step; keeping large blocks on the heap instead of
  // mmap/munmap avoids re-faulting (and zeroing) fresh pages each time.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void* CpuBackend::allocate(size_t nbytes) { return host_allocate(nbytes); }

void CpuBackend::deallocate(void* p) { host_free(p); }
void CpuBackend::copy_from_host(void* dst, const void* src, size_t n) {
  if (n) std::memcpy(dst, src, n);
}
void CpuBackend::copy_to_host(void* dst, const void* src, size_t n) {
  if (n) std::memcpy(dst, src, n);
}
void CpuBackend::copy(void* dst, const void* src, size_t n) {
  if (n && dst != src) std::memmove(dst, src, n);  // views of one storage may overlap
}

void CpuBackend::embedding_forward(const Tensor& weight, const Tensor& index, Tensor& y) {
  const int64_t rows = weight.size(0), dim = weight.size(1);
  const float* wp = weight.data<float>();
  const int64_t* ip = index.data<int64_t>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < index.numel(); ++i) {
    SHRINK_CHECK(ip[i] >= 0 && ip[i] < rows, "embedding: index ", ip[i], " at position ", i,
                 " is out of range for ", rows, " rows");
    std::memcpy(yp + i * dim, wp + ip[i] * dim, dim * sizeof(float));
  }
}

void CpuBackend::embedding_backward(const Tensor& gy, const Tensor& index, Tensor& gweight) {
  const int64_t dim = gweight.size(1);
  const float* gp = gy.data<float>();
  const int64_t* ip = index.data<int64_t>();
  float* gw = gweight.data<float>();
  std::fill_n(gw, gweight.numel(), 0.f);
  for (int64_t i = 0; i < index.numel(); ++i)
    for (int64_t j = 0; j < dim; ++j) gw[ip[i] * dim + j] += gp[i * dim + j];
}

// The update loops name their pointers __restrict and take the momentum-buffer test out of the
// loop, so the compiler may vectorise them (parameters, gradients and buffers never alias).
void CpuBackend::sgd_step(Tensor& param, const Tensor& grad, Tensor* momentum_buf, float lr,
                          float momentum, float dampening, float weight_decay, bool nesterov,
                          bool first_step) {
  float* p_ = param.data<float>();
  const float* g_ = grad.data<float>();
  float* buf_ = momentum_buf ? momentum_buf->data<float>() : nullptr;
  parallel_for(param.numel(), 1 << 15, [=](int64_t b, int64_t e) {
    float* __restrict p = p_;
    const float* __restrict g = g_;
    float* __restrict buf = buf_;
    if (buf) {
      for (int64_t i = b; i < e; ++i)
        scalar::sgd_update(p[i], g[i], buf + i, lr, momentum, dampening, weight_decay, nesterov,
                           first_step);
    } else {
      for (int64_t i = b; i < e; ++i)
        scalar::sgd_update(p[i], g[i], nullptr, lr, momentum, dampening, weight_decay, nesterov,
                           first_step);
    }
  });
}

void CpuBackend::adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr,
                           float beta1, float beta2, float eps, float weight_decay,
                           bool decoupled, int64_t step) {
  float* p_ = param.data<float>();
  const float* g_ = grad.data<float>();
  float* m_ = m.data<float>();
  float* v_ = v.data<float>();
  const float step_size = lr / (1.f - std::pow(beta1, static_cast<float>(step)));
  const float bc2_sqrt = std::sqrt(1.f - std::pow(beta2, static_cast<float>(step)));
  parallel_for(param.numel(), 1 << 15, [=](int64_t b, int64_t e) {
    float* __restrict p = p_;
    const float* __restrict g = g_;
    float* __restrict mp = m_;
    float* __restrict vp = v_;
    for (int64_t i = b; i < e; ++i)
      scalar::adam_update(p[i], g[i], mp[i], vp[i], lr, beta1, beta2, eps, weight_decay, decoupled,
                          step_size, bc2_sqrt);
  });
}

}  // namespace cpu
}  // namespace shrink
