// `shrink prune`: prunes a zoo model with a config list and saves the masks (safetensors, keyed
// "<module>.<target>", full target shape, f32 0/1). One-shot pruners rank the loaded weights;
// training-based pruners and schedules train on Fashion-MNIST. --finetune-epochs trains the
// masked model afterwards and reports test accuracy before and after. With --json, stdout is
// exactly one JSON object {"targets": {"<module>.<target>": {"sparsity": s, "shape": [...]}}, ...}
// and progress goes to stderr.
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "compression/config/config_error.h"
#include "compression/pruning/mask_io.h"
#include "compression/pruning/pruner_factory.h"
#include "compression/speedup/dependency.h"
#include "examples/cli.h"
#include "examples/fashion_session.h"
#include "framework/core/random.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"
#include "models/zoo.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_prune(const std::vector<std::string>& args) {
  std::string model_name, weights, config_path, masks_path;
  compression::PrunerOptions popts;
  int64_t finetune_epochs;
  TrainOptions topts;
  po::options_description desc("shrink prune options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("weights", po::value(&weights), "load these weights (.safetensors) first")
      ("config", po::value(&config_path)->required(), "config list (JSON file)")
      ("pruner", po::value(&popts.pruner)->required(), compression::pruner_names_help().c_str())
      ("train-steps", po::value(&popts.training_steps)->default_value(100), "training steps of slim/taylor/apoz/mean_activation (movement: cooldown step)")
      ("warmup-steps", po::value(&popts.warmup_steps)->default_value(10), "movement: warm-up steps")
      ("interval-steps", po::value(&popts.interval_steps)->default_value(10), "linear/agp: steps between mask updates")
      ("total-times", po::value(&popts.total_times)->default_value(10), "linear/agp/lottery: number of updates (iterations)")
      ("base-pruner", po::value(&popts.base_pruner)->default_value("l1"), "linear/agp/lottery: the pruner they drive")
      ("finetune-epochs", po::value(&finetune_epochs)->default_value(0), "train the masked model afterwards")
      ("save-masks", po::value(&masks_path)->required(), "write the masks here (.safetensors)")
      ("auto-dependency-groups", "fill in dependency_group_id / internal_metric_block from one traced forward")
      ("json", "print one JSON object on stdout");
  add_train_options(desc, topts);
  add_checkpoint_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "prune")) return *status;
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  const Device device = apply_runtime_options(topts);

  manual_seed(topts.seed);
  auto model = load_model(model_name, weights);
  std::optional<boost::json::value> read = read_config_file(config_path, "prune");
  if (!read) return 2;
  boost::json::value config = *read;
  FashionSession session = make_fashion_session(model, topts, device, finetune_epochs, log);
  const double acc_before = session.trainer->evaluate().accuracy;

  std::unique_ptr<compression::PruningRun> run;
  try {
    if (vm.count("auto-dependency-groups")) {
      // One training image is enough to trace the channels through the model.
      data::Batch b;
      session.trainer->train_loader()->start_epoch();
      session.trainer->train_loader()->next(b);
      Tensor one = slice(b.inputs, 0, 0, 1).to(device);
      config = compression::auto_set_dependency_group_ids(*model, config, {nn::Value(one)});
      log << "config with automatic dependency groups: " << boost::json::serialize(config) << "\n";
    }
    run = compression::make_pruner(popts, model, config, *session.trainer);
  } catch (const compression::config::ConfigError& e) {
    std::cerr << "shrink prune: " << e.what() << "\n";
    return 2;
  }
  for (const auto& w : run->warnings()) log << "warning: " << w << "\n";
  compression::Masks masks = run->compress(finetune_epochs);
  double acc_after = session.trainer->evaluate().accuracy;
  compression::save_masks(masks_path, masks);
  log << "pruned with " << popts.pruner << ": test accuracy " << std::fixed << std::setprecision(4)
      << acc_before << " -> " << acc_after
      << "; masks saved to " << masks_path << "\n";

  boost::json::object targets;
  for (const auto& [key, m] : masks) {
    boost::json::array shape;
    for (int64_t d : m.shape()) shape.push_back(d);
    targets[key] = boost::json::object{{"sparsity", mask_sparsity(m)}, {"shape", shape}};
  }
  if (json) {
    boost::json::object out{{"targets", targets},
                            {"test_acc_before", acc_before},
                            {"test_acc_after", acc_after}};
    std::cout << boost::json::serialize(out) << "\n";
  } else {
    for (const auto& [key, m] : masks)
      std::cout << key << "  sparsity " << mask_sparsity(m) << "  shape " << shape_str(m.shape()) << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
