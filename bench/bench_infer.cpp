// bench_infer: inference speed of a pruned-then-sped-up model against the dense one, in the same
// run. For vgg_small and resnet20 (1x28x28 inputs): L1 50 % of the output channels of every conv
// but the first, each batch norm with its convolution, dependency groups automatic
// (auto_set_dependency_group_ids), then speedup_model. Rounds alternate dense and sped-up
// forwards (eval mode, no gradient); each row gives the medians over the rounds and the median of
// the per-round speed ratio (dense time / sped-up time) with its min and max.
// A second table compares int8 inference (compression/quantization/int8_model.h) with the float
// forward of the same dense model: PTQ on 4 random batches, int8 weights per output channel and
// int8 inputs per tensor on every Conv2d and Linear, batch norms and ReLUs folded.
//   ./build/bin/bench_infer --threads 2 [--rounds 7] [--batches 1,64] [--only sped_up|int8] [--model M]
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "bench/bench_args.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/quantization/int8_model.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/speedup/dependency.h"
#include "compression/speedup/speedup.h"
#include "framework/core/autograd.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace po = boost::program_options;
using namespace shrink;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds per forward of `x`, over enough repetitions to last ~0.3 s.
double forward_seconds(nn::Module& model, const Tensor& x, int reps) {
  NoGradGuard ng;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) model(x);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

std::shared_ptr<nn::Module> sped_up(const std::string& name, const char* first_conv, const char* first_bn) {
  manual_seed(1);
  auto model = models::make_model(name);
  const Tensor probe = randn({2, 1, 28, 28});
  std::ostringstream cfg;
  cfg << R"([{"op_types": ["Conv2d", "BatchNorm2d"], "exclude_op_names": [")" << first_conv << R"(", ")" << first_bn
      << R"("], "sparse_ratio": 0.5, "granularity": "out_channel"}])";
  boost::json::value config =
      compression::auto_set_dependency_group_ids(*model, boost::json::parse(cfg.str()), {nn::Value(probe)});
  compression::Masks masks;
  {
    compression::L1NormPruner pruner(model, config);
    masks = pruner.compress();
  }
  compression::SpeedupReport r = compression::speedup_model(*model, masks, {nn::Value(probe)});
  std::cerr << name << ": params " << r.params_before << " -> " << r.params_after << ", MACs " << r.macs_before << " -> "
            << r.macs_after << ", deviation " << r.deviation << "\n";
  return model;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, rounds = 7;
  std::string batches = "1,64", only, model_only;
  po::options_description desc("bench_infer options");
  desc.add_options()("help,h", "show this help")("threads", po::value(&threads)->default_value(0), "threads (0: all)")(
      "rounds", po::value(&rounds)->default_value(7), "alternating rounds")(
      "batches", po::value(&batches)->default_value(batches), "comma-separated batch sizes")(
      "only", po::value(&only), "sped_up or int8: one table only")(
      "model", po::value(&model_only), "one model only (the int8 table also has mlp and lenet5)");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  if (threads > 0) set_num_threads(threads);
  std::vector<int64_t> sizes;
  std::stringstream ss(batches);
  for (std::string b; std::getline(ss, b, ',');) sizes.push_back(std::stoll(b));

  struct Case {
    const char* name;
    const char* first_conv;
    const char* first_bn;
  };
  const std::vector<Case> cases{{"vgg_small", "features.conv1", "features.bn1"}, {"resnet20", "conv1", "bn1"}};
  // Rounds alternate the two forwards; one CSV row per batch size.
  auto side_by_side = [&](const char* model, nn::Module& a, nn::Module& b) {
    for (int64_t batch : sizes) {
      const Tensor x = randn({batch, 1, 28, 28});
      const int reps = std::max<int>(2, static_cast<int>(256 / batch));
      forward_seconds(a, x, 1);  // warm up
      forward_seconds(b, x, 1);
      std::vector<double> ta, tb, ratio;
      for (int r = 0; r < rounds; ++r) {
        ta.push_back(forward_seconds(a, x, reps));
        tb.push_back(forward_seconds(b, x, reps));
        ratio.push_back(ta.back() / tb.back());
      }
      const auto [lo, hi] = std::minmax_element(ratio.begin(), ratio.end());
      std::cout << model << "," << batch << "," << num_threads() << "," << std::fixed << std::setprecision(3)
                << median(ta) * 1e3 << "," << median(tb) * 1e3 << "," << median(ratio) << "," << *lo << "," << *hi
                << "\n"
                << std::flush;
    }
  };
  if (only != "int8") {
    std::cout << "model,batch,threads,dense_ms,sped_up_ms,median_speedup,min_speedup,max_speedup\n";
    for (const Case& c : cases) {
      if (!model_only.empty() && model_only != c.name) continue;
      manual_seed(1);
      auto dense = models::make_model(c.name);
      auto small = sped_up(c.name, c.first_conv, c.first_bn);
      dense->eval();
      small->eval();
      side_by_side(c.name, *dense, *small);
    }
  }
  if (only != "sped_up") {
    std::cout << "model,batch,threads,fp32_ms,int8_ms,median_speedup,min_speedup,max_speedup\n";
    for (const char* name : {"mlp", "lenet5", "vgg_small", "resnet20"}) {
      if (!model_only.empty() && model_only != name) continue;
      manual_seed(1);
      auto fp32 = models::make_model(name);
      auto int8 = models::make_model(name);
      fp32->eval();
      int8->eval();
      const Tensor probe = randn({8, 1, 28, 28});
      compression::CalibrationConfig calibration;
      {
        compression::PtqQuantizer q(int8, boost::json::parse(R"([{"op_types": ["Conv2d", "Linear"],
            "target_names": ["weight", "_input_"], "quant_dtype": "int8",
            "target_settings": {"weight": {"granularity": "out_channel"}}}])"));
        for (int i = 0; i < 4; ++i) q.calibrate({nn::Value(randn({16, 1, 28, 28}))});
        calibration = q.finish_calibration();
      }
      compression::Int8Model converted(*int8, calibration, {nn::Value(probe)});
      std::cerr << name << ": " << converted.report().converted.size() << " int8 layers, "
                << converted.report().folded.size() << " batch norms and ReLUs folded, "
                << converted.report().linked.size() << " byte links, " << converted.report().kept_float.size()
                << " layers kept float\n";
      side_by_side(name, *fp32, *int8);
    }
  }
  return 0;
}
