// Shared pieces of the `shrink` command-line tool: subcommand entry points and JSON output.
#pragma once
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shrink {
class Tensor;
namespace nn {
class Module;
}
}  // namespace shrink

namespace shrink::cli {

// Each subcommand takes its own arguments (argv without the subcommand) and returns the exit
// status: 0 ok, 2 bad usage or invalid input, 1 runtime failure.
int cmd_train(const std::vector<std::string>& args);
// `shrink explain`: the target table a config list gives a zoo model; 2 for an invalid config.
int cmd_explain(const std::vector<std::string>& args);
// `shrink prune`: masks for a zoo model from a config list, saved as safetensors.
int cmd_prune(const std::vector<std::string>& args);
// `shrink quantize`: a quantizer over a zoo model, calibration saved as safetensors + JSON.
int cmd_quantize(const std::vector<std::string>& args);
// `shrink distill`: a zoo student trained on Fashion-MNIST with a distillation loss from a teacher.
int cmd_distill(const std::vector<std::string>& args);
// `shrink fuse`: prune + quantize + distil a zoo model in one training run (fusion compression).
int cmd_fuse(const std::vector<std::string>& args);
// `shrink speedup`: masks applied for real (smaller layers), saved as a model file.
int cmd_speedup(const std::vector<std::string>& args);
// `shrink eval`: test accuracy and inference speed of a zoo model or a model file.
int cmd_eval(const std::vector<std::string>& args);
// `shrink infer`: the same in float, fake-quantized from a calibration, or with int8 kernels.
int cmd_infer(const std::vector<std::string>& args);
// `shrink compress`: a recipe of stages run into an output directory, with a report.
int cmd_compress(const std::vector<std::string>& args);

// Parses a subcommand's arguments: prints help and returns 0 for --help, prints the error and
// the options and returns 2 for bad usage, returns nullopt when the command should run.
std::optional<int> parse_args(const std::vector<std::string>& args,
                              const boost::program_options::options_description& desc,
                              boost::program_options::variables_map& vm, const char* command);

// The zoo model `name` (seeded by the caller), with `weights` (.safetensors) loaded when given.
std::shared_ptr<nn::Module> load_model(const std::string& name, const std::string& weights);
// Where a command's model comes from: --model (zoo, with --weights) or --model-file.
struct ModelSource {
  std::string model_name, weights, model_file;
};
void add_model_source_options(boost::program_options::options_description& desc, ModelSource& source);
// The model the options name; nullptr after printing "shrink <command>: <why>" (both or neither
// given, or a file that does not load).
std::shared_ptr<nn::Module> load_model_source(const ModelSource& source, const char* command);
// A config list file as JSON; nullopt after printing "shrink <command>: <path>: <why>".
std::optional<boost::json::value> read_config_file(const std::string& path, const char* command);

// The fraction of a mask's elements that are 0.
double mask_sparsity(const Tensor& mask);

// Whether live progress bars may be drawn on `fd`: a terminal, and not under mpirun (which hands
// every rank a pseudo-terminal of its own, whatever mpirun's own output is).
bool draws_progress(int fd);

// Prints a JSON-safe number (no NaN/inf, which JSON cannot hold).
std::string json_number(double v);

}  // namespace shrink::cli
