// Error checks for the CUDA runtime, cuBLAS and cuDNN: each failure throws shrink::Error with
// file:line, the call and the library's own error string.
#pragma once
#include "framework/core/error.h"

#define SHRINK_CUDA_CHECK(call)                                                              \
  do {                                                                                       \
    cudaError_t shrink_err_ = (call);                                                        \
    if (shrink_err_ != cudaSuccess)                                                          \
      ::shrink::fail(__FILE__, ":", __LINE__, ": ", #call, ": ", cudaGetErrorString(shrink_err_)); \
  } while (0)

#define SHRINK_CUBLAS_CHECK(call)                                                            \
  do {                                                                                       \
    cublasStatus_t shrink_st_ = (call);                                                      \
    if (shrink_st_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::shrink::fail(__FILE__, ":", __LINE__, ": ", #call, ": ", cublasGetStatusString(shrink_st_)); \
  } while (0)

#define SHRINK_CUDNN_CHECK(call)                                                             \
  do {                                                                                       \
    cudnnStatus_t shrink_st_ = (call);                                                       \
    if (shrink_st_ != CUDNN_STATUS_SUCCESS)                                                  \
      ::shrink::fail(__FILE__, ":", __LINE__, ": ", #call, ": ", cudnnGetErrorString(shrink_st_)); \
  } while (0)

// The names the issue uses.
#define CUDA_CHECK(call) SHRINK_CUDA_CHECK(call)
#define CUBLAS_CHECK(call) SHRINK_CUBLAS_CHECK(call)
#define CUDNN_CHECK(call) SHRINK_CUDNN_CHECK(call)
