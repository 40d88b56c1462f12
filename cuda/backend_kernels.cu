// CudaBackend: memory and the elementwise / reduction / data-movement entry points, each one
// launch of a kernel in cuda/kernels/.
#include "cuda/checks.h"
#include "cuda/cuda_backend_impl.h"
#include "cuda/kernels/elementwise.cuh"
#include "cuda/kernels/reduce.cuh"
#include "cuda/runtime.h"

namespace shrink::cuda {

void* CudaBackend::allocate(size_t nbytes) { return device_alloc(nbytes == 0 ? 1 : nbytes); }
void CudaBackend::deallocate(void* p) { device_free(p); }

void CudaBackend::copy_from_host(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, current_stream()));
  // The host buffer may be freed right after this returns.
  SHRINK_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, current_stream()));
  SHRINK_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
}

void CudaBackend::copy(void* dst, const void* src, size_t n) {
  if (n == 0 || dst == src) return;
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, current_stream()));
}

void CudaBackend::synchronize() { SHRINK_CUDA_CHECK(cudaStreamSynchronize(current_stream())); }

void CudaBackend::fill(Tensor& out, float value) {
  switch (out.dtype()) {
    case DType::F32: kern::fill(out.data<float>(), out.numel(), value); return;
    case DType::I64: kern::fill_as(out.data<int64_t>(), out.numel(), value); return;
    case DType::I32: kern::fill_as(out.data<int32_t>(), out.numel(), value); return;
    case DType::U8: kern::fill_as(out.data<uint8_t>(), out.numel(), value); return;
    case DType::I8: kern::fill_as(out.data<int8_t>(), out.numel(), value); return;
  }
}

void CudaBackend::convert(const Tensor& src, Tensor& dst) {
  visit_dtype(src.dtype(), [&](auto s_tag) {
    using S = decltype(s_tag);
    visit_dtype(dst.dtype(), [&](auto d_tag) {
      using D = decltype(d_tag);
      kern::convert(static_cast<const S*>(src.raw_data()), static_cast<D*>(dst.raw_data()), src.numel());
    });
  });
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, float p0, float p1) {
  kern::unary(op, x.data<float>(), y.data<float>(), x.numel(), p0, p1);
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                                 Tensor& gx, float p0, float p1) {
  kern::unary_backward(op, x.defined() ? x.data<float>() : nullptr,
                       y.defined() ? y.data<float>() : nullptr, gy.data<float>(),
                       gx.data<float>(), gy.numel(), p0, p1);
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Broadcast& bc,
                         Tensor& out) {
  kern::binary(op, a.data<float>(), b.data<float>(), out.data<float>(), out.numel(),
               kern::make_strided(bc.out, bc.a_strides, bc.b_strides));
}

void CudaBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
                         Tensor& out, Tensor* index) {
  kern::reduce(op, x.data<float>(), outer, n, inner, out.data<float>(),
               index && index->defined() ? index->data<int64_t>() : nullptr);
}

void CudaBackend::sum_to(const Tensor& grad, const Shape& grad_shape,
                         const std::vector<int64_t>& out_strides, Tensor& out) {
  kern::sum_to(grad.data<float>(), out.data<float>(), out.numel(),
               kern::make_sum_to(grad_shape, out_strides));
}

void CudaBackend::expand(const Tensor& x, const std::vector<int64_t>& x_strides, Tensor& out) {
  kern::expand(x.raw_data(), out.raw_data(), out.numel(), static_cast<int>(dtype_size(x.dtype())),
               kern::make_strided(out.shape(), x_strides, {}));
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  kern::where(cond.data<float>(), a.data<float>(), b.data<float>(), out.data<float>(), out.numel());
}

void CudaBackend::permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) {
  const Shape& in = x.shape();
  const int64_t rank = static_cast<int64_t>(in.size());
  std::vector<int64_t> in_strides(rank, 1), src(rank);
  for (int64_t d = rank - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * in[d + 1];
  for (int64_t d = 0; d < rank; ++d) src[d] = in_strides[perm[d]];
  kern::permute(x.raw_data(), out.raw_data(), out.numel(), static_cast<int>(dtype_size(x.dtype())),
                kern::make_strided(out.shape(), src, {}));
}

void CudaBackend::copy_block(const Tensor& src, int64_t outer, int64_t src_n, int64_t inner,
                             Tensor& dst, int64_t dst_n, int64_t offset, int64_t step,
                             bool to_src) {
  kern::copy_block(src.raw_data(), dst.raw_data(), outer, src_n, inner, dst_n, offset, step,
                   static_cast<int>(dtype_size(src.dtype())), to_src);
}

}  // namespace shrink::cuda
