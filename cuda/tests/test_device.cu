// The kernel cases of tests/cuda/kernel_cases.inc on a real GPU: buffers in device memory, the
// kernels compiled by nvcc. Without a device every case is skipped with a visible message.
#include <boost/test/unit_test.hpp>
#include <cuda_runtime.h>

#include <iostream>

#include "cuda/checks.h"
#include "cuda/cuda_backend.h"
#include "cuda/runtime.h"
#include "cuda/kernel_harness.h"  // tests/cuda/

namespace shrink::kt {
template <typename T>
class Buf {
 public:
  explicit Buf(const std::vector<T>& host) : n_(host.size()) {
    alloc();
    if (n_) SHRINK_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  explicit Buf(size_t n, T fill = T()) : Buf(std::vector<T>(n, fill)) {}
  ~Buf() {
    if (ptr_) cudaFree(ptr_);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* ptr() { return ptr_; }
  std::vector<T> host() const {
    std::vector<T> out(n_);
    SHRINK_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream()));
    if (n_) SHRINK_CUDA_CHECK(cudaMemcpy(out.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  void alloc() {
    if (n_) SHRINK_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  size_t n_;
  T* ptr_ = nullptr;
};
inline void device_sync() { SHRINK_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream())); }
inline bool device_available() { return cuda::device_count() > 0; }
constexpr const char* kMode = "device";
}  // namespace shrink::kt

// A visible line in the test output (and CTest's skip marker, see cuda/CMakeLists.txt).
struct DevicePresence {
  DevicePresence() {
    if (!shrink::kt::device_available())
      std::cout << "test_cuda_device: no CUDA device present, device cases skipped ("
                << shrink::cuda::describe_device() << ")" << std::endl;
  }
};
BOOST_TEST_GLOBAL_FIXTURE(DevicePresence);

#include "cuda/kernel_cases.inc"
#include "cuda/kernel_cases_quant.inc"
#include "cuda/kernel_cases_distill.inc"
#include "cuda/kernel_cases_more.inc"
