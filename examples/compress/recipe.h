// Recipes for `shrink compress`: one JSON file that says which model to start from and which
// stages to run on it, in order. Parsing checks everything that can be checked without running a
// stage — structure, known keys, types and ranges, stage names, teacher references, each stage's
// config list against the config-list schema — and names the place of the first mistake as
// `recipe.<key>` / `recipe.stages[<i>].<key>[...]: <what is wrong>`.
//
//   {"model": "vgg_small", "weights": "w.safetensors",      // or "model_file": "sped_up.safetensors"
//    "seed": 1, "threads": 0,
//    "data": {"dir": "...", "train_limit": -1, "test_limit": -1, "batch": 64},
//    "stages": [{"stage": "train", "epochs": 2},
//               {"stage": "prune", "pruner": "l1", "config_list": [...], "finetune_epochs": 1,
//                "auto_dependency_groups": true},
//               {"stage": "speedup"},
//               {"stage": "fuse", "quantize": {"quantizer": "qat", "config_list": [...]},
//                "distill": {"config_list": [...], "teacher": "initial"}, "epochs": 1},
//               {"stage": "evaluate", "int8": true},
//               {"stage": "export"}]}
//
// Paths (weights, model_file, data.dir, a config_list given as a file name) are relative to the
// recipe file's directory. README.md documents every key.
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/error.h"

namespace shrink::cli::recipe {

// A recipe the user got wrong: the message names the key (`recipe.stages[2].epochs: ...`).
class RecipeError : public shrink::Error {
 public:
  using shrink::Error::Error;
};

// The optimizer of a stage that trains (SGD with momentum, cosine schedule over its epochs).
struct Training {
  int64_t epochs = 0;
  double lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
};

struct PruneSpec {
  std::string pruner;
  boost::json::value config_list;
  bool auto_dependency_groups = false;
  int64_t training_steps = 100, warmup_steps = 10, interval_steps = 10, total_times = 10;
  std::string base_pruner = "l1";
};
struct QuantizeSpec {
  std::string quantizer;
  boost::json::value config_list;
  int64_t steps = 10;  // ptq: calibration batches; training quantizers without epochs: steps
  std::string observer = "minmax";
  double percentile = 99.99;
  bool bias_correction = false;
  int64_t quant_start_step = 0;
};
struct DistillSpec {
  boost::json::value config_list;
  std::string teacher = "initial";  // "initial" (the model the recipe starts from) or a stage name
  std::string distiller = "dynamic";
  double temperature = 2.0, origin_loss_lambda = 1.0;
};

enum class StageKind { Train, Prune, Speedup, Quantize, Distill, Fuse, Evaluate, Export };
const char* to_string(StageKind kind);

struct Stage {
  StageKind kind;
  std::string name;  // unique; default "<index>-<kind>"
  Training training;
  std::optional<PruneSpec> prune;         // prune, fuse
  std::optional<QuantizeSpec> quantize;   // quantize, fuse
  std::optional<DistillSpec> distill;     // distill, fuse
  int64_t check_batch = 16;               // speedup: test images traced and compared
  bool int8 = false;                      // evaluate: also with int8 kernels (needs a calibration)
  std::vector<std::string> formats{"safetensors"};  // export: "safetensors" (bundle), "onnx"
  // The quantizer whose calibration the model carries after this stage ("" none, "bundle" the
  // starting model file's own).
  std::string calibrated_by;
};

// DoReFa, BNN and naive quantize through a transform (tanh, sign, truncation) that a calibration
// file does not hold: their calibration is not a plain grid.
bool is_transform_quantizer(const std::string& quantizer);

struct Recipe {
  std::string model, weights, model_file;  // zoo name (+ weights) or a model file
  uint64_t seed = 1;
  int threads = 0;
  std::string data_dir;
  int64_t train_limit = -1, test_limit = -1, batch = 64;
  std::vector<Stage> stages;
  boost::json::value source;    // the recipe as written
  boost::json::value resolved;  // the same with config list files inlined and paths absolute
};

// `base_dir` resolves relative paths. Throws RecipeError.
Recipe parse_recipe(const boost::json::value& json, const std::string& base_dir);
// Reads and parses a file; a file that is not JSON is named with line and column.
Recipe load_recipe(const std::string& path);

}  // namespace shrink::cli::recipe
