// bench_kernels: achieved bandwidth of the hand-written kernels (GB/s, from the byte formulas of
// traffic.h) next to the device's spec bandwidth and a measured copy kernel, plus GFLOP/s of
// cuBLAS GEMM and cuDNN convolution. Needs a GPU; exits 0 with a message without one.
//   ./build/bin/bench_kernels            (N = 8M and 32M floats)
// Target for elementwise, mask, fake-quant and distillation kernels at N >= 8M: >= 80% of the copy
// kernel.
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cuda/bench/traffic.h"
#include "cuda/checks.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernels/distill.cuh"
#include "cuda/kernels/elementwise.cuh"
#include "cuda/kernels/optim.cuh"
#include "cuda/kernels/quant.cuh"
#include "cuda/kernels/reduce.cuh"
#include "cuda/kernels/softmax.cuh"
#include "cuda/runtime.h"
#include "framework/core/tensor.h"

using namespace shrink;

namespace {

struct Timer {
  cudaEvent_t a, b;
  Timer() {
    SHRINK_CUDA_CHECK(cudaEventCreate(&a));
    SHRINK_CUDA_CHECK(cudaEventCreate(&b));
  }
  ~Timer() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  // Mean milliseconds per call over `iters` calls after 3 warm-up calls.
  double ms(const std::function<void()>& fn, int iters = 20) {
    for (int i = 0; i < 3; ++i) fn();
    SHRINK_CUDA_CHECK(cudaEventRecord(a, cuda::current_stream()));
    for (int i = 0; i < iters; ++i) fn();
    SHRINK_CUDA_CHECK(cudaEventRecord(b, cuda::current_stream()));
    SHRINK_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    SHRINK_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    return t / iters;
  }
};

float* device_floats(int64_t n, float value) {
  float* p = static_cast<float*>(cuda::device_alloc(n * sizeof(float)));
  kern::fill(p, n, value);
  return p;
}

}  // namespace

int main() {
  if (!cuda::init()) {
    std::printf("bench_kernels: %s; nothing to measure\n", cuda::describe_device().c_str());
    return 0;
  }
  cudaDeviceProp prop{};
  SHRINK_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  int mem_khz = 0;
  SHRINK_CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, 0));
  const double spec_gbs = 2.0 * mem_khz * 1e3 * (prop.memoryBusWidth / 8.0) / 1e9;
  std::printf("device: %s\nspec bandwidth: %.0f GB/s (2 x %d MHz x %d-bit bus)\n\n",
              cuda::describe_device().c_str(), spec_gbs, mem_khz / 1000, prop.memoryBusWidth);
  Timer timer;
  std::printf("%-24s %10s %9s %9s %8s %8s\n", "kernel", "N", "ms", "GB/s", "%copy", "%spec");
  for (int64_t n : {int64_t(8) << 20, int64_t(32) << 20}) {
    float* x = device_floats(n, 0.5f);
    float* y = device_floats(n, 0.f);
    float* g = device_floats(n, 1.f);
    float* m = device_floats(n, 1.f);
    float* v = device_floats(n, 0.f);
    float* s = device_floats(1, 0.01f);
    float* z = device_floats(1, 0.f);
    double copy_gbs = 0;
    auto row = [&](const std::string& name, int64_t bytes, const std::function<void()>& fn) {
      double ms = timer.ms(fn);
      double gbs = bytes / (ms * 1e-3) / 1e9;
      if (name == "copy") copy_gbs = gbs;
      std::printf("%-24s %10lld %9.4f %9.1f %7.1f%% %7.1f%%\n", name.c_str(), (long long)n, ms, gbs,
                  100.0 * gbs / copy_gbs, 100.0 * gbs / spec_gbs);
    };
    kern::StridedIndex same = kern::make_strided({n}, {1}, {1});
    kern::StridedIndex scalar = kern::make_strided({n}, {1}, {0});
    QuantArgs qat{QuantMethod::QatClampRound, -127.f, 127.f, 1.f};
    row("copy", bench::bytes_copy(n), [&] { kern::copy(x, y, n); });
    row("fill", bench::bytes_fill(n), [&] { kern::fill(y, n, 1.f); });
    row("unary relu", bench::bytes_unary(n), [&] { kern::unary(UnaryOp::Relu, x, y, n, 0, 0); });
    row("unary gelu", bench::bytes_unary(n), [&] { kern::unary(UnaryOp::Gelu, x, y, n, 0, 0); });
    row("relu backward", bench::bytes_unary_backward(n),
        [&] { kern::unary_backward(UnaryOp::Relu, x, nullptr, g, y, n, 0, 0); });
    row("binary add", bench::bytes_binary(n, n), [&] { kern::binary(BinaryOp::Add, x, g, y, n, same); });
    row("mask mul (full mask)", bench::bytes_mask(n, n), [&] { kern::binary(BinaryOp::Mul, x, m, y, n, same); });
    row("mask add (full mask)", bench::bytes_mask(n, n), [&] { kern::binary(BinaryOp::MaskAdd, x, m, y, n, same); });
    row("fake quant (tensor)", bench::bytes_fake_quant(n, 1),
        [&] { kern::fake_quant(qat, x, s, z, y, n, scalar, true); });
    row("fake quant backward", bench::bytes_fake_quant_backward(n, 1),
        [&] { kern::fake_quant_backward(qat, x, s, z, g, y, nullptr, nullptr, n, scalar, true); });
    const int64_t rows = n / 1024;
    row("reduce sum rows (1024)", bench::bytes_reduce_rows(rows, 1024),
        [&] { kern::reduce(ReduceOp::Sum, x, rows, 1024, 1, y, nullptr); });
    row("softmax rows (1024)", bench::bytes_softmax(rows, 1024),
        [&] { kern::softmax(x, y, rows, 1024, 1, false); });
    row("distill kl rows (1024)", bench::bytes_distill(rows, 1024),
        [&] { kern::distill_loss(DistillLoss::Kl, x, g, rows, 1024, 2.f, v, y); });
    row("distill mse rows (1024)", bench::bytes_distill(rows, 1024),
        [&] { kern::distill_loss(DistillLoss::Mse, x, g, rows, 1024, 2.f, v, y); });
    row("sgd momentum", bench::bytes_sgd_momentum(n),
        [&] { kern::sgd_step(y, g, m, n, 0.01f, 0.9f, 0.f, 0.f, false, false); });
    row("adam", bench::bytes_adam(n),
        [&] { kern::adam_step(y, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, false, 10); });
    for (float* p : {x, y, g, m, v, s, z}) cuda::device_free(p);
    std::printf("\n");
  }

  // Dense work through the backend (cuBLAS / cuDNN), GFLOP/s.
  Backend& be = backend(Device::CUDA);
  for (int64_t d : {1024, 4096}) {
    Tensor a = Tensor::ones({d, d}, DType::F32, Device::CUDA), b = Tensor::ones({d, d}, DType::F32, Device::CUDA);
    Tensor c = Tensor::zeros({d, d}, DType::F32, Device::CUDA);
    double ms = timer.ms([&] {
      be.gemm(false, false, d, d, d, 1.f, a.data<float>(), d, b.data<float>(), d, 0.f, c.data<float>(), d);
    });
    std::printf("%-24s %10lld %9.4f %9.1f GFLOP/s (fp32, no TF32)\n", "cuBLAS sgemm", (long long)d, ms,
                bench::flops_gemm(d, d, d) / (ms * 1e-3) / 1e9);
  }
  Conv2dParams p{};
  p.n = 64; p.c = 64; p.h = p.w = 56; p.oc = 64; p.kh = p.kw = 3; p.oh = p.ow = 56;
  p.stride_h = p.stride_w = 1; p.pad_h = p.pad_w = 1; p.dil_h = p.dil_w = 1; p.groups = 1;
  Tensor xi = Tensor::ones({p.n, p.c, p.h, p.w}, DType::F32, Device::CUDA);
  Tensor wi = Tensor::ones({p.oc, p.c, 3, 3}, DType::F32, Device::CUDA);
  Tensor yo = Tensor::zeros({p.n, p.oc, p.oh, p.ow}, DType::F32, Device::CUDA);
  double ms = timer.ms([&] { be.conv2d_forward(p, xi, wi, nullptr, yo); }, 10);
  std::printf("%-24s %10s %9.4f %9.1f GFLOP/s\n", "cuDNN conv 3x3 64ch 56²", "n=64", ms,
              bench::flops_conv2d(p.n, p.c, p.oc, p.oh, p.ow, 3, 3, 1) / (ms * 1e-3) / 1e9);
  return 0;
}
