// bench_ops: per-op overhead on 1-element tensors, the cost every op pays before any arithmetic
// (dispatch, shape checks, allocation, autograd bookkeeping). Two modes:
//   nograd: each op alone under NoGradGuard, microseconds per op;
//   grad:   forward and backward of a 10-op chain on a leaf that requires grad, microseconds per
//           op (chain time / 10).
// Twin: bench/bench_ops_torch.py prints the same CSV for PyTorch. Side by side:
//   ./build/bin/bench_ops --seconds 1 && /usr/bin/python3 bench/bench_ops_torch.py --seconds 1
#include <boost/program_options.hpp>
#include <chrono>
#include <functional>
#include <iomanip>
#include <iostream>
#include <string>

#include "bench/bench_args.h"
#include "framework/core/autograd.h"
#include "framework/shrink.h"

namespace po = boost::program_options;
using namespace shrink;
using Clock = std::chrono::steady_clock;

namespace {

// Calls fn in batches until `seconds` pass; returns microseconds per call.
double time_per_call(double seconds, const std::function<void()>& fn) {
  for (int i = 0; i < 100; ++i) fn();  // warm-up: allocator, caches
  int64_t calls = 0;
  const auto t0 = Clock::now();
  double elapsed = 0.0;
  do {
    for (int i = 0; i < 1000; ++i) fn();
    calls += 1000;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds);
  return elapsed * 1e6 / static_cast<double>(calls);
}

void row(const char* op, const char* mode, double us) {
  std::cout << op << "," << mode << "," << std::fixed << std::setprecision(3) << us << "\n" << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  int threads = 1;
  po::options_description desc("bench_ops options");
  desc.add_options()("help,h", "help")("seconds", po::value(&seconds)->default_value(1.0), "seconds per row")(
      "threads", po::value(&threads)->default_value(1), "threads (1-element ops never split)");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  set_num_threads(threads);
  const Tensor a = Tensor::from_vector({1.5f}, {1}), b = Tensor::from_vector({-0.5f}, {1});
  const Tensor m1 = Tensor::from_vector({1.5f}, {1, 1}), m2 = Tensor::from_vector({2.f}, {1, 1});
  volatile float sink = 0.f;
  std::cout << "op,mode,us_per_op\n";
  {
    NoGradGuard ng;
    row("add", "nograd", time_per_call(seconds, [&] { sink = sink + add(a, b).data<float>()[0]; }));
    row("mul", "nograd", time_per_call(seconds, [&] { sink = sink + mul(a, b).data<float>()[0]; }));
    row("matmul1x1", "nograd", time_per_call(seconds, [&] { sink = sink + matmul(m1, m2).data<float>()[0]; }));
    row("relu", "nograd", time_per_call(seconds, [&] { sink = sink + relu(b).data<float>()[0]; }));
    row("sum", "nograd", time_per_call(seconds, [&] { sink = sink + sum(a).data<float>()[0]; }));
  }
  // With grad: x -> 10 ops of one kind -> sum -> backward (x.grad cleared each time).
  auto chain = [&](const char* op, const std::function<Tensor(const Tensor&)>& f, const Tensor& leaf_value) {
    Tensor x = leaf_value.contiguous_copy().set_requires_grad(true);
    row(op, "grad", time_per_call(seconds, [&] {
          Tensor y = x;
          for (int i = 0; i < 10; ++i) y = f(y);
          sum(y).backward();
          sink = sink + x.grad().data<float>()[0];
          x.zero_grad();
        }) / 10.0);
  };
  chain("add", [&](const Tensor& y) { return add(y, b); }, a);
  chain("mul", [&](const Tensor& y) { return mul(y, b); }, a);
  chain("matmul1x1", [&](const Tensor& y) { return matmul(y, m2); }, m1);
  chain("relu", [](const Tensor& y) { return relu(y); }, a);
  chain("sum", [](const Tensor& y) { return sum(y); }, a);
  return 0;
}
