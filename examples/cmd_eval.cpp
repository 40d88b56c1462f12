// `shrink eval`: a model's Fashion-MNIST test accuracy and inference speed — a zoo model with
// weights, or a model file written by `shrink speedup` (its layer sizes come from the file).
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "examples/cli.h"
#include "examples/fashion_session.h"
#include "framework/core/autograd.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/ops/ops.h"
#include "models/model_file.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_eval(const std::vector<std::string>& args) {
  std::string model_name, weights, model_file;
  TrainOptions topts;
  po::options_description desc("shrink eval options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name), "a zoo model (with --weights)")
      ("weights", po::value(&weights), "its weights (.safetensors)")
      ("model-file", po::value(&model_file), "a model file from shrink speedup (instead of --model)")
      ("json", "print one JSON object on stdout");
  add_train_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "eval")) return *status;
  if (model_name.empty() == model_file.empty()) {
    std::cerr << "shrink eval: give either --model (with --weights) or --model-file\n";
    return 2;
  }
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  const Device device = apply_runtime_options(topts);
  manual_seed(topts.seed);
  std::shared_ptr<nn::Module> model;
  try {
    model = model_file.empty() ? load_model(model_name, weights) : models::load_model_file(model_file);
  } catch (const Error& e) {
    std::cerr << "shrink eval: " << e.what() << "\n";
    return 2;
  }
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
