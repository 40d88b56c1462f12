// bench_roofline: this CPU's ceilings and where resnet20's hot kernels sit under them.
//   - peak: fused multiply-adds on 16-float vectors, 12 independent chains per thread, on every
//     thread (GFLOP/s, counting an FMA as 2);
//   - copy: memcpy between buffers already touched, per thread (GB/s, bytes read + written), of
//     64 MiB per thread for the header and, for each kernel's row, of the kernel's own bytes, so
//     that a cache-resident kernel is compared with a cache-resident copy;
//   - each kernel of a resnet20 training step at batch 64 (the convolution passes of each stage,
//     BatchNorm forward/backward, ReLU forward/backward, the residual add), called through the
//     backend as the ops call it: ms per call, GFLOP/s and % of peak for the convolutions, GB/s
//     (compulsory bytes: every operand read once, every result written once) and % of the copy of
//     as many bytes.
//   ./build/bin/bench_roofline --threads 2
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <vector>

#include "bench/bench_args.h"
#include "framework/core/backend.h"
#include "framework/shrink.h"

namespace po = boost::program_options;
using namespace shrink;

namespace {

using Clock = std::chrono::steady_clock;

// Median-free and simple: repeats fn until `seconds` have passed (after one warm-up call) and
// returns seconds per call.
double time_per_call(const std::function<void()>& fn, double seconds) {
  fn();
  int64_t calls = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  do {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds);
  return elapsed / static_cast<double>(calls);
}

typedef float v16 __attribute__((vector_size(64)));

double peak_gflops(double seconds) {
  constexpr int kChains = 12;
  constexpr int64_t kIters = 1 << 22;
  std::vector<float> sink(num_threads(), 0.f);
  const double s = time_per_call([&] {
    parallel_chunks(num_threads(), num_threads(), [&](int t, int64_t, int64_t) {
      v16 acc[kChains], a, b;
      for (int l = 0; l < 16; ++l) a[l] = 1.0000001f, b[l] = 0.9999999f;
      for (auto& c : acc)
        for (int l = 0; l < 16; ++l) c[l] = static_cast<float>(l);
      for (int64_t i = 0; i < kIters; ++i)
        for (auto& c : acc) c = c * a + b;
      float total = 0;
      for (auto& c : acc) total += c[0];
      sink[t] = total;
    });
  }, seconds);
  return 2.0 * 16 * kChains * kIters * num_threads() / s / 1e9 + sink[0] * 0;
}

// memcpy of `total` bytes (read + written), split over the threads.
double copy_gbps(double total, double seconds) {
  const size_t n = std::max<size_t>(64, static_cast<size_t>(total / 2 / num_threads()));
  std::vector<std::vector<char>> src(num_threads(), std::vector<char>(n, 1)), dst(num_threads(), std::vector<char>(n, 0));
  const double s = time_per_call([&] {
    parallel_chunks(num_threads(), num_threads(), [&](int t, int64_t, int64_t) {
      std::memcpy(dst[t].data(), src[t].data(), n);
    });
  }, seconds);
  return 2.0 * n * num_threads() / s / 1e9;
}

struct Row {
  std::string kernel, shape;
  double seconds, flops, bytes;
};

Conv2dParams conv_params(int64_t n, int64_t c, int64_t hw, int64_t oc, int64_t stride) {
  Conv2dParams p{};
  p.n = n, p.c = c, p.h = hw, p.w = hw, p.oc = oc, p.kh = 3, p.kw = 3;
  p.stride_h = p.stride_w = stride, p.pad_h = p.pad_w = 1, p.dil_h = p.dil_w = 1, p.groups = 1;
  p.oh = (hw + 2 - 3) / stride + 1, p.ow = p.oh;
  return p;
}

std::string shape_of(const Conv2dParams& p) {
  return std::to_string(p.c) + "->" + std::to_string(p.oc) + " " + std::to_string(p.h) + "x" +
         std::to_string(p.w) + (p.stride_h > 1 ? " s2" : "");
}

void conv_rows(const Conv2dParams& p, double seconds, std::vector<Row>& rows) {
  Backend& be = backend(Device::CPU);
  manual_seed(1);
  Tensor x = randn({p.n, p.c, p.h, p.w}), w = randn({p.oc, p.c, p.kh, p.kw});
  Tensor y = Tensor::empty({p.n, p.oc, p.oh, p.ow}), gy = randn({p.n, p.oc, p.oh, p.ow});
  Tensor gx = Tensor::empty(x.shape()), gw = Tensor::empty(w.shape());
  const double macs = static_cast<double>(p.n) * p.oc * p.oh * p.ow * p.c * p.kh * p.kw;
  const double xb = x.numel() * 4.0, wb = w.numel() * 4.0, yb = y.numel() * 4.0;
  const std::string s = shape_of(p);
  rows.push_back({"conv forward", s, time_per_call([&] { be.conv2d_forward(p, x, w, nullptr, y); }, seconds),
                  2 * macs, xb + wb + yb});
  rows.push_back({"conv grad input", s, time_per_call([&] { be.conv2d_backward_input(p, gy, w, gx); }, seconds),
                  2 * macs, yb + wb + xb});
  rows.push_back({"conv grad weight", s, time_per_call([&] { be.conv2d_backward_weight(p, gy, x, gw); }, seconds),
                  2 * macs, yb + xb + wb});
}

void elementwise_rows(int64_t n, int64_t c, int64_t hw, double seconds, std::vector<Row>& rows) {
  Backend& be = backend(Device::CPU);
  manual_seed(2);
  const int64_t inner = hw * hw;
  Tensor x = randn({n, c, hw, hw}), gy = randn({n, c, hw, hw}), y = Tensor::empty(x.shape()),
         gx = Tensor::empty(x.shape());
  Tensor mean = Tensor::empty({c}), var = Tensor::empty({c}), invstd = Tensor::ones({c}),
         weight = Tensor::ones({c}), bias = Tensor::zeros({c}), gwt = Tensor::empty({c}), gb = Tensor::empty({c});
  const double b = x.numel() * 4.0;
  const std::string s = std::to_string(c) + " " + std::to_string(hw) + "x" + std::to_string(hw);
  be.batch_norm_stats(x, n, c, inner, mean, var);
  // Forward: statistics (one read) and the normalisation (read + write).
  rows.push_back({"batchnorm forward", s, time_per_call([&] {
                    be.batch_norm_stats(x, n, c, inner, mean, var);
                    be.batch_norm_apply(x, n, c, inner, mean, invstd, &weight, &bias, {}, y);
                  }, seconds), 0, 3 * b});
  rows.push_back({"batchnorm backward", s, time_per_call([&] {
                    be.batch_norm_backward(x, gy, n, c, inner, mean, invstd, &weight, &bias, {}, true, gx, &gwt, &gb, nullptr);
                  }, seconds), 0, 3 * b});
  // The fused batch_norm_relu op, without and with the residual (bytes: the least traffic, as
  // above: what the three ops it replaces must read and write at the least).
  Tensor res = randn(x.shape()), gres = Tensor::empty(x.shape());
  const BatchNormEpilogue relu_only{nullptr, true}, with_residual{&res, true};
  rows.push_back({"bn+relu forward", s, time_per_call([&] {
                    be.batch_norm_stats(x, n, c, inner, mean, var);
                    be.batch_norm_apply(x, n, c, inner, mean, invstd, &weight, &bias, relu_only, y);
                  }, seconds), 0, 3 * b});
  rows.push_back({"bn+relu backward", s, time_per_call([&] {
                    be.batch_norm_backward(x, gy, n, c, inner, mean, invstd, &weight, &bias, relu_only, true, gx,
                                           &gwt, &gb, nullptr);
                  }, seconds), 0, 3 * b});
  rows.push_back({"bn+add+relu forward", s, time_per_call([&] {
                    be.batch_norm_stats(x, n, c, inner, mean, var);
                    be.batch_norm_apply(x, n, c, inner, mean, invstd, &weight, &bias, with_residual, y);
                  }, seconds), 0, 4 * b});
  rows.push_back({"bn+add+relu backward", s, time_per_call([&] {
                    be.batch_norm_backward(x, gy, n, c, inner, mean, invstd, &weight, &bias, with_residual, true,
                                           gx, &gwt, &gb, &gres);
                  }, seconds), 0, 5 * b});
  rows.push_back({"relu forward", s, time_per_call([&] { be.unary(UnaryOp::Relu, x, y, 0, 0); }, seconds), 0, 2 * b});
  rows.push_back({"relu backward", s, time_per_call([&] { be.unary_backward(UnaryOp::Relu, x, y, gy, gx, 0, 0); }, seconds),
                  0, 3 * b});
  Broadcast bc{x.shape(), {c * inner, inner, hw, 1}, {c * inner, inner, hw, 1}};
  rows.push_back({"add (residual)", s, time_per_call([&] { be.binary(BinaryOp::Add, x, gy, bc, y); }, seconds), 0, 3 * b});
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  double seconds = 0.5;
  int64_t batch = 64;
  po::options_description desc("bench_roofline options");
  desc.add_options()("help,h", "help")("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")(
      "seconds", po::value(&seconds)->default_value(0.5), "measuring time per row")(
      "batch", po::value(&batch)->default_value(64), "batch size");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  if (threads > 0) set_num_threads(threads);
  const double peak = peak_gflops(seconds), copy = copy_gbps(2.0 * (size_t{64} << 20) * num_threads(), seconds);
  std::cout << std::fixed << std::setprecision(1) << "# " << num_threads() << " threads: peak " << peak
            << " GFLOP/s (FMA), copy " << copy << " GB/s\n";
  std::vector<Row> rows;
  // resnet20's convolutions: three stages of 3x3 convolutions, stride 2 entering stages 2 and 3.
  conv_rows(conv_params(batch, 16, 32, 16, 1), seconds, rows);
  conv_rows(conv_params(batch, 16, 32, 32, 2), seconds, rows);
  conv_rows(conv_params(batch, 32, 16, 32, 1), seconds, rows);
  conv_rows(conv_params(batch, 32, 16, 64, 2), seconds, rows);
  conv_rows(conv_params(batch, 64, 8, 64, 1), seconds, rows);
  elementwise_rows(batch, 16, 32, seconds, rows);
  elementwise_rows(batch, 64, 8, seconds, rows);
  std::cout << "kernel,shape,ms,gflops,pct_peak,gbps,copy_gbps,pct_copy\n";
  for (const Row& r : rows) {
    const double gf = r.flops / r.seconds / 1e9, gb = r.bytes / r.seconds / 1e9;
    const double same_copy = copy_gbps(r.bytes, seconds / 4);
    std::cout << r.kernel << "," << r.shape << "," << std::setprecision(3) << r.seconds * 1e3 << ","
              << std::setprecision(1) << gf << "," << (r.flops > 0 ? 100 * gf / peak : 0) << "," << gb << ","
              << same_copy << "," << 100 * gb / same_copy << "\n";
  }
  return 0;
}
