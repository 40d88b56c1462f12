// `shrink eval`: a model's Fashion-MNIST test accuracy and inference speed — a zoo model with
// weights, or a model file written by `shrink speedup` (its layer sizes come from the file).
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>

#include "examples/cli.h"
#include "examples/fashion_session.h"
#include "framework/core/random.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_eval(const std::vector<std::string>& args) {
  ModelSource source;
  TrainOptions topts;
  po::options_description desc("shrink eval options");
  desc.add_options()("help,h", "show this help");
  add_model_source_options(desc, source);
  desc.add_options()("json", "print one JSON object on stdout");
  add_train_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "eval")) return *status;
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  const Device device = apply_runtime_options(topts);
  manual_seed(topts.seed);
  std::shared_ptr<nn::Module> model = load_model_source(source, "eval");
  if (!model) return 2;
  model->to(device);
  const TestResult r = evaluate_test_set(*model, topts, device);
  const double acc = r.accuracy, sps = r.samples_per_s;
  const int64_t seen = r.samples;
  log << "test accuracy " << std::fixed << std::setprecision(4) << acc << " on " << seen << " images, "
      << std::setprecision(0) << sps << " samples/s at batch " << topts.batch << "\n";
  if (json) {
    boost::json::object out{{"test_acc", acc}, {"samples", seen}, {"samples_per_s", sps}, {"batch", topts.batch}};
    std::cout << boost::json::serialize(out) << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
