// bench_train: training throughput (samples/s) per zoo model at batch 64: forward, backward and
// an SGD step on random 1x28x28 inputs, after warm-up steps. Compare with bench_train_torch.py
// run on the same machine with the same thread count:
//   ./build/bin/bench_train --threads 2 && python3 bench/bench_train_torch.py --threads 2
#include <boost/program_options.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "bench/bench_args.h"
#include "framework/core/parallel.h"
#include "framework/core/random.h"
#include "framework/optim/optimizer.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace po = boost::program_options;
using namespace shrink;

int main(int argc, char** argv) {
  int threads = 0, batch = 64;
  double seconds = 3.0;
  std::vector<std::string> names;
  po::options_description desc("bench_train options");
  desc.add_options()("help,h", "help")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("batch", po::value(&batch)->default_value(64), "batch size")
      ("seconds", po::value(&seconds)->default_value(3.0), "measuring time per model")
      ("model", po::value(&names)->multitoken(), "models (default: all)");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  if (threads > 0) set_num_threads(threads);
  if (names.empty()) names = models::model_names();
  std::cout << "model,batch,threads,steps,samples_per_s\n";
  for (const auto& name : names) {
    manual_seed(0);
    auto model = models::make_model(name);
    optim::SGD opt(model->parameters(), 0.01f, 0.9f);
    Tensor x = randn({batch, 1, 28, 28});
    std::vector<int64_t> labels(batch);
    for (int i = 0; i < batch; ++i) labels[i] = i % 10;
    Tensor y = Tensor::from_vector_i64(labels, {batch});
    auto step = [&] {
      Tensor loss = cross_entropy((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    };
    for (int i = 0; i < 3; ++i) step();
    auto t0 = std::chrono::steady_clock::now();
    int steps = 0;
    double elapsed = 0;
    while (elapsed < seconds) {
      step();
      ++steps;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::cout << name << "," << batch << "," << num_threads() << "," << steps << ","
              << std::fixed << std::setprecision(1) << steps * batch / elapsed << "\n"
              << std::flush;
  }
  return 0;
}
