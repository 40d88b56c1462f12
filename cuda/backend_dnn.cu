// CudaBackend: GEMM through cuBLAS and convolution through cuDNN (forward, backward-data,
// backward-filter, grouped and depthwise included). Algorithms are chosen by cuDNN's
// heuristics among the deterministic ones, so repeated runs give identical results.
#include <vector>

#include "cuda/checks.h"
#include "cuda/cuda_backend_impl.h"
#include "cuda/kernels/elementwise.cuh"
#include "cuda/runtime.h"

namespace shrink::cuda {

void CudaBackend::gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                       float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  SHRINK_CUBLAS_CHECK(cublasSgemm(cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                                  static_cast<int>(m), static_cast<int>(k), &alpha, b,
                                  static_cast<int>(ldb), a, static_cast<int>(lda), &beta, c,
                                  static_cast<int>(ldc)));
}

namespace {

// RAII wrappers for the descriptors of one convolution call.
struct ConvDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit ConvDescs(const Conv2dParams& p) {
    SHRINK_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    SHRINK_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    SHRINK_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    SHRINK_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    SHRINK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  int(p.n), int(p.c), int(p.h), int(p.w)));
    SHRINK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  int(p.n), int(p.oc), int(p.oh), int(p.ow)));
    SHRINK_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                  int(p.oc), int(p.c / p.groups), int(p.kh),
                                                  int(p.kw)));
    SHRINK_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv, int(p.pad_h), int(p.pad_w), int(p.stride_h), int(p.stride_w), int(p.dil_h),
        int(p.dil_w), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SHRINK_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, int(p.groups)));
    // Plain fp32 math: TF32 tensor cores would change results beyond the CPU tolerances.
    SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
  }
  ~ConvDescs() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  ConvDescs(const ConvDescs&) = delete;
  ConvDescs& operator=(const ConvDescs&) = delete;
};

// The first deterministic algorithm in cuDNN's heuristic order.
template <typename Perf, typename Algo>
Algo pick(const std::vector<Perf>& perfs, int count, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perfs[i].status == CUDNN_STATUS_SUCCESS && perfs[i].determinism == CUDNN_DETERMINISTIC)
      return perfs[i].algo;
  for (int i = 0; i < count; ++i)
    if (perfs[i].status == CUDNN_STATUS_SUCCESS) return perfs[i].algo;
  fail("cuDNN: no usable algorithm for ", what);
}

}  // namespace

void CudaBackend::conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                 const Tensor* bias, Tensor& y) {
  ConvDescs d(p);
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  int found = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
      cudnn(), d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perfs.data()));
  auto algo = pick<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(perfs, found, "conv2d forward");
  size_t ws = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cudnn(), d.x, d.w, d.conv, d.y, algo, &ws));
  const float one = 1.f, zero = 0.f;
  SHRINK_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, d.x, x.data<float>(), d.w,
                                             w.data<float>(), d.conv, algo, workspace(ws), ws,
                                             &zero, d.y, y.data<float>()));
  if (bias) {  // y[n, c, :] += bias[c]
    const int64_t hw = p.oh * p.ow;
    kern::binary(BinaryOp::Add, y.data<float>(), bias->data<float>(), y.data<float>(), y.numel(),
                 kern::make_strided({p.n, p.oc, hw}, {p.oc * hw, hw, 1}, {0, 1, 0}));
  }
}

void CudaBackend::conv2d_backward_input(const Conv2dParams& p, const Tensor& gy, const Tensor& w,
                                        Tensor& gx) {
  ConvDescs d(p);
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
  int found = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      cudnn(), d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &found, perfs.data()));
  auto algo = pick<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(perfs, found, "conv2d backward-data");
  size_t ws = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn(), d.w, d.y, d.conv, d.x, algo, &ws));
  const float one = 1.f, zero = 0.f;
  SHRINK_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, d.w, w.data<float>(), d.y,
                                                  gy.data<float>(), d.conv, algo, workspace(ws),
                                                  ws, &zero, d.x, gx.data<float>()));
}

void CudaBackend::conv2d_backward_weight(const Conv2dParams& p, const Tensor& gy, const Tensor& x,
                                         Tensor& gw) {
  ConvDescs d(p);
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  int found = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      cudnn(), d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &found, perfs.data()));
  auto algo = pick<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(perfs, found, "conv2d backward-filter");
  size_t ws = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn(), d.x, d.y, d.conv, d.w, algo, &ws));
  const float one = 1.f, zero = 0.f;
  SHRINK_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, d.x, x.data<float>(), d.y,
                                                    gy.data<float>(), d.conv, algo, workspace(ws),
                                                    ws, &zero, d.w, gw.data<float>()));
}

}  // namespace shrink::cuda
