// Every kernel entry point of Backend as an override declaration, so each implementation
// (framework/cpu/cpu_backend.h, cuda/cuda_backend_impl.h) declares exactly the interface without
// repeating it. Keep in step with backend.h: a missing entry fails to compile as an abstract class.
#pragma once
#include "framework/core/backend.h"

#define SHRINK_BACKEND_KERNEL_OVERRIDES \
  void* allocate(size_t nbytes) override;                                                            \
  void deallocate(void* p) override;                                                                 \
  void copy_from_host(void* dst, const void* src, size_t nbytes) override;                           \
  void copy_to_host(void* dst, const void* src, size_t nbytes) override;                             \
  void copy(void* dst, const void* src, size_t nbytes) override;                                     \
  void fill(Tensor& out, float value) override;                                                      \
  void convert(const Tensor& src, Tensor& dst) override;                                             \
  void unary(UnaryOp op, const Tensor& x, Tensor& y, float p0, float p1) override;                   \
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,    \
                      float p0, float p1) override;                                                  \
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Broadcast& bc,                    \
              Tensor& out) override;                                                                 \
  void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,    \
              Tensor* index) override;                                                               \
  void sum_to(const Tensor& grad, const Shape& grad_shape, const std::vector<int64_t>& out_strides,  \
              Tensor& out) override;                                                                 \
  void expand(const Tensor& x, const std::vector<int64_t>& x_strides, Tensor& out) override;         \
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;            \
  void permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) override;             \
  void copy_block(const Tensor& src, int64_t outer, int64_t src_n, int64_t inner, Tensor& dst,       \
                  int64_t dst_n, int64_t offset, int64_t step, bool to_src) override;                \
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,                \
            const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,          \
            int64_t ldc) override;                                                                   \
  void conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias,   \
                      Tensor& y) override;                                                           \
  void conv2d_backward_input(const Conv2dParams& p, const Tensor& gy, const Tensor& w,               \
                             Tensor& gx) override;                                                   \
  void conv2d_backward_weight(const Conv2dParams& p, const Tensor& gy, const Tensor& x,              \
                              Tensor& gw) override;                                                  \
  void max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y,                         \
                          Tensor& index) override;                                                   \
  void max_pool2d_backward(const Pool2dParams& p, const Tensor& gy, const Tensor& index,             \
                           Tensor& gx) override;                                                     \
  void avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) override;               \
  void avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx) override;            \
  void adaptive_avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) override;      \
  void adaptive_avg_pool2d_backward(const Pool2dParams& p, const Tensor& gy, Tensor& gx) override;   \
  void batch_norm_stats(const Tensor& x, int64_t outer, int64_t c, int64_t inner, Tensor& mean,      \
                        Tensor& var_biased) override;                                                \
  void batch_norm_apply(const Tensor& x, int64_t outer, int64_t c, int64_t inner,                    \
                        const Tensor& mean, const Tensor& invstd, const Tensor* weight,              \
                        const Tensor* bias, const BatchNormEpilogue& epilogue, Tensor& y) override;  \
  void batch_norm_backward(const Tensor& x, const Tensor& gy, int64_t outer, int64_t c,              \
                           int64_t inner, const Tensor& mean, const Tensor& invstd,                  \
                           const Tensor* weight, const Tensor* bias,                                 \
                           const BatchNormEpilogue& epilogue, bool training, Tensor& gx,             \
                           Tensor* gweight, Tensor* gbias, Tensor* gresidual) override;              \
  void layer_norm_forward(const Tensor& x, int64_t rows, int64_t n, const Tensor* weight,            \
                          const Tensor* bias, float eps, Tensor& y, Tensor& mean,                    \
                          Tensor& invstd) override;                                                  \
  void layer_norm_backward(const Tensor& x, const Tensor& gy, int64_t rows, int64_t n,               \
                           const Tensor& mean, const Tensor& invstd, const Tensor* weight,           \
                           Tensor& gx, Tensor* gweight, Tensor* gbias) override;                     \
  void softmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool log,                   \
               Tensor& y) override;                                                                  \
  void softmax_backward(const Tensor& y, const Tensor& gy, int64_t outer, int64_t n,                 \
                        int64_t inner, bool log, Tensor& gx) override;                               \
  void nll_forward(const Tensor& logp, const Tensor& target, int64_t ignore_index,                   \
                   Tensor& loss) override;                                                           \
  void nll_backward(const Tensor& target, const Tensor& gloss, int64_t ignore_index,                 \
                    Tensor& glogp) override;                                                         \
  void embedding_forward(const Tensor& weight, const Tensor& index, Tensor& y) override;             \
  void embedding_backward(const Tensor& gy, const Tensor& index, Tensor& gweight) override;          \
  void distill_loss(DistillLoss kind, const Tensor& s, const Tensor& t, int64_t rows, int64_t n,      \
                    float temperature, Tensor& loss, Tensor& grad) override;                         \
  void min_max_rows(const Tensor& x, int64_t rows, int64_t n, Tensor& mn, Tensor& mx) override;     \
  void kth_value(const Tensor& x, int64_t rows, int64_t n, int64_t k, Tensor& out,                   \
                 Tensor& index) override;                                                            \
  void topk(const Tensor& x, int64_t rows, int64_t n, int64_t k, bool largest, Tensor& values,       \
            Tensor& index) override;                                                                 \
  void sgd_step(Tensor& param, const Tensor& grad, Tensor* momentum_buf, float lr, float momentum,   \
                float dampening, float weight_decay, bool nesterov, bool first_step) override;       \
  void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1,     \
                 float beta2, float eps, float weight_decay, bool decoupled,                         \
                 int64_t step) override;                                                             \
  bool fake_quant(const QuantArgs& q, const Tensor& x, const Tensor& scale,                          \
                  const Tensor& zero_point, const Broadcast& bc, Tensor& y) override;                \
  void fake_quant_backward(const QuantArgs& q, const Tensor& x, const Tensor& scale,                 \
                           const Tensor& zero_point, const Broadcast& bc, const Tensor& gy,          \
                           Tensor& gx, Tensor* gscale, Tensor* gzero) override;
