#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "cuda/checks.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_backend_impl.h"
#include "cuda/runtime.h"
#include "framework/core/backend.h"
#include "framework/dist/device_allreduce.h"

namespace shrink::cuda {

#ifdef SHRINK_HAVE_NCCL
void register_nccl();  // nccl_allreduce.cpp
#endif

namespace {
// The one device this process uses: its local rank's under mpirun (one GPU per rank), else 0.
int g_device = 0;
}  // namespace

int device_count() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return n;
}

std::string describe_device() {
  int n = device_count();
  if (n == 0) return "no CUDA device (the runtime reports none, or no driver is installed)";
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, g_device) != cudaSuccess)
    return "CUDA device " + std::to_string(g_device) + ": properties unavailable";
  std::ostringstream os;
  os << p.name << ", " << p.multiProcessorCount << " SMs, cc " << p.major << "." << p.minor << ", "
     << (p.totalGlobalMem >> 20) << " MiB";
  return os.str();
}

namespace {
struct Runtime {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cudnnHandle_t dnn = nullptr;
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  std::map<void*, size_t> sizes;
  void* ws = nullptr;
  size_t ws_size = 0;
};

Runtime& rt() {
  static Runtime* r = [] {
    auto* x = new Runtime();  // leaked on purpose: handles must outlive static destructors
    SHRINK_CUDA_CHECK(cudaSetDevice(g_device));
    SHRINK_CUDA_CHECK(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking));
    SHRINK_CUBLAS_CHECK(cublasCreate(&x->blas));
    SHRINK_CUBLAS_CHECK(cublasSetStream(x->blas, x->stream));
    SHRINK_CUDNN_CHECK(cudnnCreate(&x->dnn));
    SHRINK_CUDNN_CHECK(cudnnSetStream(x->dnn, x->stream));
    return x;
  }();
  return *r;
}

size_t round_size(size_t bytes) {
  if (bytes < 512) return 512;
  if (bytes < (1 << 20)) return (bytes + 511) / 512 * 512;
  return (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20);  // 1 MiB granules for large blocks
}
}  // namespace

cudaStream_t current_stream() { return rt().stream; }
cublasHandle_t cublas() { return rt().blas; }
cudnnHandle_t cudnn() { return rt().dnn; }

void* device_alloc(size_t bytes) {
  Runtime& r = rt();
  size_t size = round_size(bytes);
  {
    std::lock_guard<std::mutex> lk(r.mu);
    auto it = r.free_blocks.find(size);
    if (it != r.free_blocks.end()) {
      void* p = it->second;
      r.free_blocks.erase(it);
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    // Give cached blocks back and retry once before reporting out-of-memory.
    std::lock_guard<std::mutex> lk(r.mu);
    SHRINK_CUDA_CHECK(cudaStreamSynchronize(r.stream));
    for (auto& [s, b] : r.free_blocks) {
      cudaFree(b);
      r.sizes.erase(b);
    }
    r.free_blocks.clear();
    err = cudaMalloc(&p, size);
  }
  SHRINK_CUDA_CHECK(err);
  std::lock_guard<std::mutex> lk(r.mu);
  r.sizes[p] = size;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  Runtime& r = rt();
  std::lock_guard<std::mutex> lk(r.mu);
  auto it = r.sizes.find(p);
  if (it == r.sizes.end()) return;
  // Kernels on the one stream are ordered, so a block freed here may be handed to a later
  // kernel on the same stream without synchronising.
  r.free_blocks.emplace(it->second, p);
}

void* workspace(size_t bytes) {
  Runtime& r = rt();
  if (bytes > r.ws_size) {
    if (r.ws) device_free(r.ws);
    r.ws = device_alloc(bytes);
    r.ws_size = bytes;
  }
  return r.ws;
}

bool init() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    const int n = device_count();
    if (n == 0) return;
    g_device = dist::local_rank() % n;
    static CudaBackend backend_instance;
    register_backend(Device::CUDA, &backend_instance);
#ifdef SHRINK_HAVE_NCCL
    // NCCL takes one GPU per rank: with more ranks on this machine than GPUs, gradients go
    // through the host.
    if (dist::local_size() <= n) register_nccl();
#endif
    ok = true;
  });
  return ok;
}

}  // namespace shrink::cuda
