// bench_masks: mask generation time of the one-shot pruners on a wide vgg_small (width 288,
// about 25.8 M parameters): Level (element-wise), L1, L2, FPGM (out_channel) at 50% on every
// Conv2d and Linear weight. FPGM's pairwise distances are computed in row chunks of the Gram
// matrix, so its memory is O(256 x filters), not O(filters^2).
//   ./build/bin/bench_masks --threads 2
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <string>

#include "bench/bench_args.h"
#include "compression/pruning/norm_pruners.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace po = boost::program_options;
using namespace shrink;

std::string g_only;  // --only: one pruner

template <typename P>
void run(const char* name, const char* config) {
  if (!g_only.empty() && g_only != name) return;
  manual_seed(0);
  auto model = std::make_shared<models::VGGSmall>(models::ModelOptions{}, 288);
  int64_t params = 0;
  for (auto& p : model->parameters()) params += p.numel();
  P pruner(model, boost::json::parse(config));
  auto t0 = std::chrono::steady_clock::now();
  auto masks = pruner.compress();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t masked = 0;
  for (auto& [k, m] : masks) masked += m.numel();
  std::cout << name << "," << params << "," << masked << "," << std::fixed << std::setprecision(3)
            << s << "\n" << std::flush;
}

int main(int argc, char** argv) {
  int threads = 0;
  po::options_description desc("bench_masks options");
  desc.add_options()("help,h", "help")("threads", po::value(&threads)->default_value(0), "threads")(
      "only", po::value(&g_only), "level | l1 | l2 | fpgm (default: all)");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  if (threads > 0) set_num_threads(threads);
  std::cout << "pruner,model_params,masked_elements,seconds\n";
  const char* elementwise = R"([{"op_types": ["Conv2d", "Linear"], "sparse_ratio": 0.5}])";
  const char* channels = R"([{"op_types": ["Conv2d", "Linear"], "sparse_ratio": 0.5, "granularity": "out_channel"}])";
  run<compression::LevelPruner>("level", elementwise);
  run<compression::L1NormPruner>("l1", channels);
  run<compression::L2NormPruner>("l2", channels);
  run<compression::FPGMPruner>("fpgm", channels);
  return 0;
}
