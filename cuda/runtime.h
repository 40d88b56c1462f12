// Host-side CUDA runtime state shared by the backend's translation units: the stream, the
// cuBLAS and cuDNN handles, and the caching device allocator.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

namespace shrink::cuda {

cudaStream_t current_stream();
cublasHandle_t cublas();
cudnnHandle_t cudnn();

// Caching allocator: freed blocks are kept per rounded size and reused, so the
// allocate-per-op pattern of an eager framework does not call cudaMalloc/cudaFree per op.
void* device_alloc(size_t bytes);
void device_free(void* p);
// Scratch space (e.g. cuDNN workspaces), grown on demand and reused.
void* workspace(size_t bytes);

}  // namespace shrink::cuda
