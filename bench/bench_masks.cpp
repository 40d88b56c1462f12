// bench_masks: mask generation time of the one-shot pruners on a wide vgg_small (width 288,
// about 25.8 M parameters): Level (element-wise), L1, L2, FPGM (out_channel) at 50% on every
// Conv2d and Linear weight. FPGM's pairwise distances are computed in row chunks of the Gram
// matrix, so its memory is O(256 x filters), not O(filters^2). extra_mb: the peak resident memory
// during compress() above the resident memory before it (the returned masks included), from
// /proc/self/status after resetting the peak (run one pruner per process with --only for figures
// unaffected by the blocks an earlier run left cached).
//   ./build/bin/bench_masks --threads 2
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <fstream>
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
int64_t g_width = 288;  // --width: vgg_small's base width

// A field of /proc/self/status in MiB (VmRSS, VmHWM); -1 where unavailable.
double status_mb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  double kb;
  while (in >> key) {
    if (key == field + ":" && in >> kb) return kb / 1024.0;
    in.ignore(1 << 12, '\n');
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux: "5" > /proc/self/clear_refs).
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

template <typename P>
void run(const char* name, const char* config) {
  if (!g_only.empty() && g_only != name) return;
  manual_seed(0);
  auto model = std::make_shared<models::VGGSmall>(models::ModelOptions{}, g_width);
  int64_t params = 0;
  for (auto& p : model->parameters()) params += p.numel();
  P pruner(model, boost::json::parse(config));
  reset_peak();
  const double rss_before = status_mb("VmRSS");
  auto t0 = std::chrono::steady_clock::now();
  auto masks = pruner.compress();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double extra = status_mb("VmHWM") - rss_before;
  int64_t masked = 0;
  for (auto& [k, m] : masks) masked += m.numel();
  std::cout << name << "," << params << "," << masked << "," << std::fixed << std::setprecision(3)
            << s << "," << std::setprecision(1) << extra << "," << params * 4 / 1048576.0 << "\n" << std::flush;
}

int main(int argc, char** argv) {
  int threads = 0;
  po::options_description desc("bench_masks options");
  desc.add_options()("help,h", "help")("threads", po::value(&threads)->default_value(0), "threads")(
      "only", po::value(&g_only), "level | l1 | l2 | fpgm (default: all)")(
      "width", po::value(&g_width)->default_value(288), "vgg_small base width (288: 25.8 M parameters)");
  if (!shrink::bench::parse_args(argc, argv, desc)) return 0;
  if (threads > 0) set_num_threads(threads);
  std::cout << "pruner,model_params,masked_elements,seconds,extra_mb,model_mb\n";
  const char* elementwise = R"([{"op_types": ["Conv2d", "Linear"], "sparse_ratio": 0.5}])";
  const char* channels = R"([{"op_types": ["Conv2d", "Linear"], "sparse_ratio": 0.5, "granularity": "out_channel"}])";
  run<compression::LevelPruner>("level", elementwise);
  run<compression::L1NormPruner>("l1", channels);
  run<compression::L2NormPruner>("l2", channels);
  run<compression::FPGMPruner>("fpgm", channels);
  return 0;
}
