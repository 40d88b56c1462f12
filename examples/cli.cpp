// Helpers shared by the `shrink` subcommands.
#include <unistd.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "examples/cli.h"
#include "framework/dist/communicator.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"
#include "models/model_file.h"
#include "models/zoo.h"

namespace po = boost::program_options;

namespace shrink::cli {

std::optional<int> parse_args(const std::vector<std::string>& args, const po::options_description& desc,
                              po::variables_map& vm, const char* command) {
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shrink " << command << ": " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  return std::nullopt;
}

double mask_sparsity(const Tensor& mask) {
  int64_t zeros = 0;
  for (float v : mask.to_vector()) zeros += v == 0.f;
  return mask.numel() ? static_cast<double>(zeros) / static_cast<double>(mask.numel()) : 0.0;
}

std::shared_ptr<nn::Module> load_model(const std::string& name, const std::string& weights) {
  auto model = models::make_model(name);
  if (!weights.empty()) model->load_state_dict(io::load_tensors(weights));
  return model;
}

void add_model_source_options(boost::program_options::options_description& desc, ModelSource& source) {
  namespace po = boost::program_options;
  desc.add_options()
      ("model", po::value(&source.model_name), "a zoo model (with --weights)")
      ("weights", po::value(&source.weights), "its weights (.safetensors)")
      ("model-file", po::value(&source.model_file), "a model file from shrink speedup (instead of --model)");
}

std::shared_ptr<nn::Module> load_model_source(const ModelSource& source, const char* command) {
  if (source.model_name.empty() == source.model_file.empty()) {
    std::cerr << "shrink " << command << ": give either --model (with --weights) or --model-file\n";
    return nullptr;
  }
  try {
    return source.model_file.empty() ? load_model(source.model_name, source.weights)
                                     : models::load_model_file(source.model_file);
  } catch (const Error& e) {
    std::cerr << "shrink " << command << ": " << e.what() << "\n";
    return nullptr;
  }
}

std::optional<boost::json::value> read_config_file(const std::string& path, const char* command) {
  try {
    return boost::json::parse(io::read_file(path));
  } catch (const std::exception& e) {
    std::cerr << "shrink " << command << ": " << path << ": " << e.what() << "\n";
    return std::nullopt;
  }
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

bool draws_progress(int fd) { return isatty(fd) != 0 && dist::world()->size() == 1; }

}  // namespace shrink::cli
