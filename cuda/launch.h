// The one launch helper. Every kernel in cuda/ is started through SHRINK_LAUNCH, which is a
// real <<<grid, block, shared, stream>>> launch under nvcc and a run of the CPU emulator
// (cuda/emu/) otherwise; the kernel's name is recorded for the emulation coverage test.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "cuda/kernel_api.h"

#if defined(__CUDACC__) && !defined(SHRINK_CUDA_EMULATION)
#include <cuda_runtime.h>

#include "cuda/checks.h"

namespace shrink::cuda {
using Dim = dim3;
cudaStream_t current_stream();

template <typename... KernelArgs, typename... Args>
void launch(const char* /*name*/, void (*kernel)(KernelArgs...), Dim grid, Dim block,
            size_t shared_bytes, Args&&... args) {
  kernel<<<grid, block, shared_bytes, current_stream()>>>(std::forward<Args>(args)...);
  SHRINK_CUDA_CHECK(cudaGetLastError());
}
}  // namespace shrink::cuda

#else

namespace shrink::cuda {
using Dim = emu::Dim3;

template <typename... KernelArgs, typename... Args>
void launch(const char* name, void (*kernel)(KernelArgs...), Dim grid, Dim block,
            size_t shared_bytes, Args&&... args) {
  emu::launch(name, grid, block, shared_bytes, [&] { kernel(args...); });
}
}  // namespace shrink::cuda

#endif

namespace shrink::cuda {
// Blocks of `threads` covering n items, capped (kernels use grid-stride loops beyond the cap).
inline Dim blocks_for(int64_t n, unsigned threads, unsigned cap = 65535) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return Dim{static_cast<unsigned>(b), 1, 1};
}
inline Dim threads_1d(unsigned n) { return Dim{n, 1, 1}; }
}  // namespace shrink::cuda

#define SHRINK_LAUNCH(kernel, grid, block, shared, ...) \
  ::shrink::cuda::launch(#kernel, kernel, grid, block, shared, __VA_ARGS__)
