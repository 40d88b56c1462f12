// `shrink explain`: resolves a compression config list against a zoo model for one compressor kind
// and prints what it selects — one row per target with its canonical settings, warnings below —
// so a user sees exactly what a config copied from NNI's documents will do before compressing.
// --json prints exactly one JSON object instead. An invalid config exits with status 2, the
// error on stderr and nothing on stdout.
#include <boost/program_options.hpp>
#include <iostream>
#include <iterator>

#include "compression/config/config_list.h"
#include "compression/config/explain.h"
#include "examples/cli.h"
#include "models/zoo.h"

namespace po = boost::program_options;
namespace config = shrink::compression::config;

namespace shrink::cli {

int cmd_explain(const std::vector<std::string>& args) {
  std::string model_name, config_path, compressor;
  po::options_description desc("shrink explain options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("config", po::value(&config_path)->required(), "config list: a JSON file ('-' reads stdin)")
      ("compressor", po::value(&compressor)->required(), "pruning | quantization | distillation")
      ("json", "print one JSON object {\"targets\": [...], \"warnings\": [...]}");
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "explain")) return *status;
  std::optional<config::CompressorKind> kind = config::parse_compressor_kind(compressor);
  if (!kind) {
    std::cerr << "shrink explain: --compressor must be pruning, quantization or distillation\n";
    return 2;
  }
  std::shared_ptr<nn::Module> model;
  try {
    model = models::make_model(model_name);
  } catch (const Error& e) {
    std::cerr << "shrink explain: " << e.what() << "\n";
    return 2;
  }

  std::vector<std::string> warnings;
  std::vector<config::TargetSpace> targets;
  try {
    if (config_path == "-") {
      std::string text(std::istreambuf_iterator<char>(std::cin), {});
      targets = config::parse_config_list_json(*model, text, *kind, &warnings);
    } else {
      targets = config::load_config_list(*model, config_path, *kind, &warnings);
    }
  } catch (const config::ConfigError& e) {
    std::cerr << "shrink explain: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("json"))
    std::cout << config::explain_json_text(targets, warnings) << "\n";
  else
    std::cout << config::explain_table(targets, warnings);
  return 0;
}

}  // namespace shrink::cli
