// bench_compress: the cost of compression wrappers on a training step. For vgg_small and
// resnet20 (batch 64, 1x28x28), times forward + backward + SGD step against the same model
// unwrapped, in the same run, alternating the two to cancel drift (each row: medians over the
// rounds, and the median of the per-round ratios with its min and max):
//   masks       every Conv2d/Linear weight masked (50% element-wise, LevelPruner); target <= 1.03
//   fake_quant  every Conv2d/Linear weight, input and output int8 fake-quantized by the QAT
//               quantizer (EMA observers, scale refreshed every forward); target <= 1.10
// the Trainer's default non-finite check (finite_check: loss and gradients; target <= 1.01),
// and the distillation step: a lenet5 student step plus a vgg_small teacher forward (no
// gradient) and the KL of their logits (distill_kl, T = 2), against the plain student step.
//   ./build/bin/bench_compress --threads 2
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <tuple>

#include "bench/bench_args.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/quantization/qat_quantizer.h"
#include "framework/optim/optimizer.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace po = boost::program_options;
using namespace shrink;

namespace {
// One CSV row from per-round (baseline, compressed) step times: medians of each and of the
// per-round ratio, with the ratio's spread (rounds alternate the two, so drift cancels).
void print_row(const std::string& model, const std::string& kind, std::vector<double> base,
               std::vector<double> comp) {
  std::vector<double> ratio;
  for (size_t i = 0; i < base.size(); ++i) ratio.push_back(comp[i] / base[i]);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  const auto [lo, hi] = std::minmax_element(ratio.begin(), ratio.end());
  std::cout << model << "," << kind << "," << num_threads() << "," << std::fixed << std::setprecision(2)
            << median(base) * 1e3 << "," << median(comp) * 1e3 << "," << std::setprecision(3) << median(ratio) << ","
            << *lo << "," << *hi << "\n"
            << std::flush;
}

// A batch of 64 random 1x28x28 images with labels 0..9 repeating.
std::pair<Tensor, Tensor> batch64() {
  std::vector<int64_t> labels(64);
  for (int i = 0; i < 64; ++i) labels[i] = i % 10;
  return {randn({64, 1, 28, 28}), Tensor::from_vector_i64(labels, {64})};
}

double step_seconds(nn::Module& model, optim::SGD& opt, const Tensor& x, const Tensor& y, int steps) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    Tensor loss = cross_entropy(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
}
}  // namespace

int main(int argc, char** argv) {
  int threads = 0, rounds = 5, steps = 3;
  po::options_description desc("bench_compress options");
  desc.add_options()("help,h", "help")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("rounds", po::value(&rounds)->default_value(5), "alternating rounds per model")
      ("steps", po::value(&steps)->default_value(3), "training steps per round");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  if (threads > 0) set_num_threads(threads);
  std::cout << "model,compressor,threads,baseline_ms,compressed_ms,median_ratio,min_ratio,max_ratio\n";
  for (const std::string name : {"vgg_small", "resnet20"}) {
    for (const std::string kind : {"masks", "fake_quant"}) {
      manual_seed(0);
      auto model = models::make_model(name);
      auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.01f, 0.9f);
      Tensor x, y;
      std::tie(x, y) = batch64();
      // The QAT quantizer's trainer is only its owner of callbacks here; the loop below is ours.
      auto ds = std::make_shared<data::TensorDataset>(x, y);
      train::Trainer trainer(model, opt, std::make_shared<data::DataLoader>(ds, 64, false, 0));
      std::unique_ptr<compression::LevelPruner> pruner;
      std::unique_ptr<compression::QATQuantizer> quantizer;
      std::vector<compression::ModuleWrapper*> wrappers;
      if (kind == "masks") {
        pruner = std::make_unique<compression::LevelPruner>(model, boost::json::parse(
            R"([{"op_types": ["Conv2d", "Linear"], "sparse_ratio": 0.5, "granularity": "default"}])"));
        pruner->compress();  // element-wise 50% masks on every weight
        for (auto& [n, w] : pruner->wrappers()) wrappers.push_back(w.get());
      } else {
        quantizer = std::make_unique<compression::QATQuantizer>(model, boost::json::parse(
            R"([{"op_types": ["Conv2d", "Linear"], "quant_dtype": "int8",
                 "target_names": ["_input_", "weight", "_output_"]}])"), trainer);
        for (auto& [n, w] : quantizer->wrappers()) wrappers.push_back(w.get());
      }
      step_seconds(*model, *opt, x, y, 2);  // warm-up with the wrappers
      std::vector<double> wrapped, plain;
      for (int r = 0; r < rounds; ++r) {
        for (auto* w : wrappers) w->unwrap();
        plain.push_back(step_seconds(*model, *opt, x, y, steps));
        for (auto* w : wrappers) w->wrap();
        wrapped.push_back(step_seconds(*model, *opt, x, y, steps));
      }
      print_row(name, kind, plain, wrapped);
    }
  }
  // The Trainer's default non-finite check (loss and every gradient, one min/max pass each) against
  // the same Trainer step without it; target <= 1.01.
  for (const std::string name : {"vgg_small", "resnet20"}) {
    manual_seed(0);
    auto model = models::make_model(name);
    auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.01f, 0.9f);
    Tensor x, y;
    std::tie(x, y) = batch64();
    auto ds = std::make_shared<data::TensorDataset>(x, y);
    train::Trainer trainer(model, opt, std::make_shared<data::DataLoader>(ds, 64, false, 0));
    auto trainer_step = [&](bool check) {
      trainer.set_check_finite(check);
      auto t0 = std::chrono::steady_clock::now();
      trainer.train(-1, steps);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
    };
    trainer_step(true);
    std::vector<double> off, on;
    for (int r = 0; r < rounds; ++r) {
      off.push_back(trainer_step(false));
      on.push_back(trainer_step(true));
    }
    print_row(name, "finite_check", off, on);
  }
  // Distillation: the teacher's forward dominates (vgg_small is ~50x lenet5's compute).
  {
    manual_seed(0);
    auto student = models::make_model("lenet5"), teacher = models::make_model("vgg_small");
    teacher->eval();
    optim::SGD opt(student->parameters(), 0.01f, 0.9f);
    Tensor x, y;
    std::tie(x, y) = batch64();
    auto distill_step = [&](int n) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) {
        Tensor out = (*student)(x);
        Tensor t;
        {
          NoGradGuard ng;
          t = (*teacher)(x);
        }
        Tensor loss = add(mul(cross_entropy(out, y), 0.5f), mul(distill_kl(out, t, 2.f), 0.5f));
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
    };
    distill_step(2);
    std::vector<double> plain, distill;
    for (int r = 0; r < rounds; ++r) {
      plain.push_back(step_seconds(*student, opt, x, y, steps));
      distill.push_back(distill_step(steps));
    }
    print_row("lenet5", "distill_from_vgg_small", plain, distill);
  }
  return 0;
}
