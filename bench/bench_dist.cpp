// bench_dist: data-parallel training throughput. Every rank trains the same model on its share of
// a global batch (random 1x28x28 inputs), gradients averaged by dist::GradReducer; prints, per
// model, the global samples/s, the time per step a rank spent waiting for the all-reduce after
// backward, and the gradient bytes each step moves. Run alone (one rank) and under mpirun to
// compare, e.g. on a 2-core machine, 1 process x 2 threads against 2 processes x 1 thread:
//   ./build/bin/bench_dist --threads 2
//   mpirun -np 2 ./build/bin/bench_dist --threads 1
// (bench/dist_scaling.sh alternates the two for several rounds and prints the medians.)
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "bench/bench_args.h"
#include "framework/core/parallel.h"
#include "framework/core/random.h"
#include "framework/dist/data_parallel.h"
#include "framework/optim/optimizer.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace po = boost::program_options;
using namespace shrink;

int main(int argc, char** argv) {
  dist::init(&argc, &argv);
  auto world = dist::world();
  int threads = 0, batch = 64, bucket_kb = 0;
  double seconds = 3.0;
  bool deterministic = false, allreduce_only = false;
  std::vector<std::string> names;
  po::options_description desc("bench_dist options");
  desc.add_options()("help,h", "help")
      ("threads", po::value(&threads)->default_value(0), "threads per rank (0 = all cores)")
      ("batch", po::value(&batch)->default_value(64), "global batch size")
      ("seconds", po::value(&seconds)->default_value(3.0), "measuring time per model")
      ("deterministic", po::bool_switch(&deterministic), "sum gradients in rank order")
      ("bucket-kb", po::value(&bucket_kb)->default_value(0), "gradient bucket size in KB (0: GradReducer's default)")
      ("allreduce", po::bool_switch(&allreduce_only), "instead: microseconds per all-reduce of 64 KB to 16 MB (median of 30)")
      ("model", po::value(&names)->multitoken(), "models (default: lenet5 resnet20)");
  if (!shrink::bench::parse_args(argc, argv, desc)) {
    dist::finalize();
    return 0;
  }
  if (threads > 0) set_num_threads(threads);
  if (allreduce_only) {
    if (world->is_writer()) std::cout << "bytes,ranks,us_per_allreduce,us_per_ordered_sum\n";
    for (int64_t bytes = int64_t{1} << 16; bytes <= int64_t{1} << 24; bytes *= 4) {
      std::vector<float> buf(static_cast<size_t>(bytes / 4), 1.0f);
      double us[2];
      for (int ordered = 0; ordered < 2; ++ordered) {
        std::vector<double> times;
        for (int rep = 0; rep < 30; ++rep) {
          world->barrier();
          const auto t0 = std::chrono::steady_clock::now();
          if (ordered) world->allreduce_sum_ordered(buf.data(), bytes / 4);
          else world->allreduce(buf.data(), bytes / 4, dist::ReduceOp::Sum);
          times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(times.begin(), times.end());
        us[ordered] = times[times.size() / 2];
      }
      if (world->is_writer())
        std::cout << bytes << "," << world->size() << "," << std::fixed << std::setprecision(1) << us[0] << "," << us[1]
                  << "\n";
    }
    dist::finalize();
    return 0;
  }
  if (names.empty()) names = {"lenet5", "resnet20"};
  const int ranks = world->size(), rank = world->rank();
  const int64_t lo = int64_t{batch} * rank / ranks, hi = int64_t{batch} * (rank + 1) / ranks;
  if (world->is_writer())
    std::cout << "model,ranks,threads_per_rank,global_batch,steps,samples_per_s,allreduce_wait_ms_per_step,"
                 "gradient_mb_per_step\n";
  for (const auto& name : names) {
    manual_seed(0);
    auto model = models::make_model(name);
    optim::SGD opt(model->parameters(), 0.01f, 0.9f);
    Tensor x = randn({hi - lo, 1, 28, 28});
    std::vector<int64_t> labels(static_cast<size_t>(hi - lo));
    for (int64_t i = lo; i < hi; ++i) labels[static_cast<size_t>(i - lo)] = i % 10;
    Tensor y = Tensor::from_vector_i64(labels, {hi - lo});
    int64_t grad_bytes = 0;
    for (const Tensor& p : model->parameters()) grad_bytes += p.numel() * 4;
    std::unique_ptr<dist::GradReducer> reducer;
    if (ranks > 1) {
      dist::GradReducer::Options o;
      o.deterministic = deterministic;
      if (bucket_kb > 0) o.bucket_bytes = int64_t{bucket_kb} * 1024;
      reducer = std::make_unique<dist::GradReducer>(world, model->named_parameters(), o);
    }
    auto step = [&] {
      if (reducer) reducer->begin_step(static_cast<double>(hi - lo) / batch);
      Tensor loss = cross_entropy((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      if (reducer) reducer->finish_step();
      opt.step();
    };
    for (int i = 0; i < 3; ++i) step();
    const double wait0 = reducer ? reducer->wait_seconds() : 0.0;
    // Every rank runs the same number of steps: rank 0's clock decides when to stop.
    auto t0 = std::chrono::steady_clock::now();
    int64_t steps = 0;
    for (int64_t go = 1; go;) {
      step();
      ++steps;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      go = elapsed < seconds ? 1 : 0;
      world->broadcast(&go, sizeof go, 0);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double wait_ms = reducer ? (reducer->wait_seconds() - wait0) * 1e3 / static_cast<double>(steps) : 0.0;
    world->allreduce(&wait_ms, 1, dist::ReduceOp::Max);  // the slowest rank's wait
    if (world->is_writer())
      std::cout << name << "," << ranks << "," << num_threads() << "," << batch << "," << steps << "," << std::fixed
                << std::setprecision(1) << static_cast<double>(steps * batch) / elapsed << "," << std::setprecision(3)
                << wait_ms << "," << grad_bytes / 1e6 << "\n"
                << std::flush;
  }
  dist::finalize();
  return 0;
}
