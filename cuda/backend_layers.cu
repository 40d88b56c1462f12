// CudaBackend: pooling, normalisation, softmax and losses, embedding, selection and optimizer
// updates — each one launch of a kernel in cuda/kernels/. Index and target errors that a kernel
// cannot throw are counted on the device and turned into the same shrink::Error as on the CPU.
#include "cuda/checks.h"
#include "cuda/cuda_backend_impl.h"
#include "cuda/kernels/distill.cuh"
#include "cuda/kernels/elementwise.cuh"
#include "cuda/kernels/embedding.cuh"
#include "cuda/kernels/minmax.cuh"
#include "cuda/kernels/norm.cuh"
#include "cuda/kernels/optim.cuh"
#include "cuda/kernels/pool.cuh"
#include "cuda/kernels/select.cuh"
#include "cuda/kernels/softmax.cuh"
#include "cuda/runtime.h"

namespace shrink::cuda {

namespace {
// A device counter of invalid indices for one call; check() reads it back (synchronising).
class BadCounter {
 public:
  BadCounter() : p_(static_cast<unsigned*>(device_alloc(sizeof(unsigned)))) {
    SHRINK_CUDA_CHECK(cudaMemsetAsync(p_, 0, sizeof(unsigned), current_stream()));
  }
  ~BadCounter() { device_free(p_); }
  BadCounter(const BadCounter&) = delete;
  BadCounter& operator=(const BadCounter&) = delete;
  unsigned* get() { return p_; }
  unsigned read() {
    unsigned n = 0;
    SHRINK_CUDA_CHECK(cudaMemcpyAsync(&n, p_, sizeof(unsigned), cudaMemcpyDeviceToHost, current_stream()));
    SHRINK_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
    return n;
  }

 private:
  unsigned* p_;
};

const float* opt(const Tensor* t) { return t && t->defined() ? t->data<float>() : nullptr; }
float* opt_out(Tensor* t) { return t && t->defined() ? t->data<float>() : nullptr; }
}  // namespace

void CudaBackend::max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y, Tensor& index) {
  kern::max_pool2d_forward(p, x.data<float>(), y.data<float>(), index.data<int64_t>());
}
void CudaBackend::max_pool2d_backward(const Pool2dParams& p, const Tensor& gy, const Tensor& index, Tensor& gx) {
  kern::max_pool2d_backward(p, gy.data<float>(), index.data<int64_t>(), gx.data<float>());
}
void CudaBackend::avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  kern::avg_pool2d_forward(p, x.data<float>(), y.data<float>());
}
void CudaBackend::avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx) {
  kern::avg_pool2d_backward(p, gy.data<float>(), gx.data<float>());
}
void CudaBackend::adaptive_avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  kern::adaptive_avg_pool2d_forward(p, x.data<float>(), y.data<float>());
}
void CudaBackend::adaptive_avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx) {
  kern::adaptive_avg_pool2d_backward(p, gy.data<float>(), gx.data<float>());
}

void CudaBackend::batch_norm_stats(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                   Tensor& mean, Tensor& var_biased) {
  kern::batch_norm_stats(x.data<float>(), outer, c, inner, mean.data<float>(), var_biased.data<float>());
}
void CudaBackend::batch_norm_apply(const Tensor& x, int64_t outer, int64_t c, int64_t inner,
                                   const Tensor& mean, const Tensor& invstd, const Tensor* weight,
                                   const Tensor* bias, const BatchNormEpilogue& ep, Tensor& y) {
  kern::batch_norm_apply(x.data<float>(), outer, c, inner, mean.data<float>(), invstd.data<float>(),
                         opt(weight), opt(bias), opt(ep.residual), ep.relu, y.data<float>());
}
void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, int64_t outer, int64_t c,
                                      int64_t inner, const Tensor& mean, const Tensor& invstd,
                                      const Tensor* weight, const Tensor* bias,
                                      const BatchNormEpilogue& ep, bool training, Tensor& gx,
                                      Tensor* gweight, Tensor* gbias, Tensor* gresidual) {
  kern::batch_norm_backward(x.data<float>(), gy.data<float>(), outer, c, inner, mean.data<float>(),
                            invstd.data<float>(), opt(weight), opt(bias), opt(ep.residual), ep.relu,
                            training, gx.data<float>(), opt_out(gweight), opt_out(gbias),
                            opt_out(gresidual));
}
void CudaBackend::layer_norm_forward(const Tensor& x, int64_t rows, int64_t n, const Tensor* weight,
                                     const Tensor* bias, float eps, Tensor& y, Tensor& mean,
                                     Tensor& invstd) {
  kern::layer_norm_forward(x.data<float>(), rows, n, opt(weight), opt(bias), eps, y.data<float>(),
                           mean.data<float>(), invstd.data<float>());
}
void CudaBackend::layer_norm_backward(const Tensor& x, const Tensor& gy, int64_t rows, int64_t n,
                                      const Tensor& mean, const Tensor& invstd, const Tensor* weight,
                                      Tensor& gx, Tensor* gweight, Tensor* gbias) {
  kern::layer_norm_backward(x.data<float>(), gy.data<float>(), rows, n, mean.data<float>(),
                            invstd.data<float>(), opt(weight), gx.data<float>(), opt_out(gweight),
                            opt_out(gbias));
}

void CudaBackend::softmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log, Tensor& y) {
  kern::softmax(x.data<float>(), y.data<float>(), outer, n, inner, log);
}
void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t outer, int64_t n,
                                   int64_t inner, bool log, Tensor& gx) {
  kern::softmax_backward(y.data<float>(), gy.data<float>(), gx.data<float>(), outer, n, inner, log);
}
void CudaBackend::nll_forward(const Tensor& logp, const Tensor& target, int64_t ignore_index, Tensor& loss) {
  BadCounter bad;
  kern::nll_forward(logp.data<float>(), target.data<int64_t>(), loss.data<float>(), logp.size(0),
                    logp.size(1), ignore_index, bad.get());
  const unsigned n = bad.read();
  SHRINK_CHECK(n == 0, "nll_loss: ", n, " targets out of range for ", logp.size(1), " classes");
}
void CudaBackend::nll_backward(const Tensor& target, const Tensor& gloss, int64_t ignore_index, Tensor& glogp) {
  kern::nll_backward(target.data<int64_t>(), gloss.data<float>(), glogp.data<float>(), glogp.size(0),
                     glogp.size(1), ignore_index);
}

void CudaBackend::embedding_forward(const Tensor& weight, const Tensor& index, Tensor& y) {
  BadCounter bad;
  kern::embedding_forward(weight.data<float>(), index.data<int64_t>(), y.data<float>(), index.numel(),
                          weight.size(0), weight.size(1), bad.get());
  const unsigned n = bad.read();
  SHRINK_CHECK(n == 0, "embedding: ", n, " indices out of range for ", weight.size(0), " rows");
}
void CudaBackend::embedding_backward(const Tensor& gy, const Tensor& index, Tensor& gweight) {
  kern::embedding_backward(gy.data<float>(), index.data<int64_t>(), gweight.data<float>(),
                           index.numel(), gweight.size(0), gweight.size(1));
}

void CudaBackend::distill_loss(DistillLoss kind, const Tensor& s, const Tensor& t, int64_t rows, int64_t n,
                               float temperature, Tensor& loss, Tensor& grad) {
  kern::distill_loss(kind, s.data<float>(), t.data<float>(), rows, n, temperature, loss.data<float>(),
                     grad.data<float>());
}

void CudaBackend::min_max_rows(const Tensor& x, int64_t rows, int64_t n, Tensor& mn, Tensor& mx) {
  kern::min_max_rows(x.data<float>(), rows, n, mn.data<float>(), mx.data<float>());
}

void CudaBackend::kth_value(const Tensor& x, int64_t rows, int64_t n, int64_t k, Tensor& out, Tensor& index) {
  kern::kth_value(x.data<float>(), rows, n, k, out.data<float>(), index.data<int64_t>());
}
void CudaBackend::topk(const Tensor& x, int64_t rows, int64_t n, int64_t k, bool largest,
                       Tensor& values, Tensor& index) {
  kern::topk(x.data<float>(), rows, n, k, largest, values.data<float>(), index.data<int64_t>());
}

void CudaBackend::sgd_step(Tensor& param, const Tensor& grad, Tensor* momentum_buf, float lr,
                           float momentum, float dampening, float weight_decay, bool nesterov,
                           bool first_step) {
  kern::sgd_step(param.data<float>(), grad.data<float>(), opt_out(momentum_buf), param.numel(), lr,
                 momentum, dampening, weight_decay, nesterov, first_step);
}
void CudaBackend::adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr,
                            float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                            int64_t step) {
  kern::adam_step(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                  param.numel(), lr, beta1, beta2, eps, weight_decay, decoupled, step);
}

}  // namespace shrink::cuda
