// TargetSpace: one compression target (a parameter, buffer, input or output of one module) with its
// canonical settings — what a config list resolves to, and what wrappers and compressors consume.
//
// Canonical target names
//   parameters and buffers: their registered name ("weight", "bias", "running_mean").
//   inputs:  "_input_<i>", i the position among Module::arg_names(); "_input_" and
//            "_input_<argname>" are spellings of the same targets ("_input_" is "_input_0").
//   outputs: "_output_0" for a tensor output (what "_output_" means), "_output_<i>" for item i of
//            a list output, "_output_<key>" for a dict output. No forward runs while parsing, so an
//            output index or key is checked by the wrapper when it first sees the module's output.
//
// Canonical settings: a JSON object per target holding every key of its default template (see
// settings.h) plus any key the config set for it, each value in canonical form:
//   pruning       sparse_ratio        null | float in [0, 1]
//                 max_sparse_ratio    null | float in (0, 1]
//                 min_sparse_ratio    null | float in [0, 1)
//                 sparse_threshold    null | float
//                 global_group_id     null | int | string
//                 dependency_group_id null | int | string
//                 granularity         "default" | "in_channel" | "out_channel" | "per_channel" |
//                                     [int, ...] (block sizes, -1 = the whole dimension)
//                 internal_metric_block null | int >= 1
//                 apply_method        "mul" | "add" | "bypass"
//                 align               null | {"module_name": null | string, "target_name": string,
//                                              "dims": [int, ...]}   (bias defaults to weight, [0])
//   quantization  quant_dtype         "int<N>" | "uint<N>", N in 1..32 (null in a config: "int8")
//                 quant_scheme        null (the quantizer chooses) | "affine" | "symmetric"
//                 granularity         as for pruning
//                 apply_method        "clamp_round" | "qat_clamp_round" | "bypass"
//                 quant_start_step    int >= 0 — only on targets of a legacy sub-config that set it:
//                                     the QAT quantizer leaves the target alone until that step
//   distillation  lambda              float >= 0 (an integer is taken as a float; null: 1.0)
//                 link                [string, ...] teacher module names (null: the student
//                                     module's own name, NNI's 'auto')
//                 apply_method        "mse" | "kl" (null: "mse")
#pragma once
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace shrink::compression::config {

enum class CompressorKind { Pruning, Quantization, Distillation };
enum class TargetKind { Parameter, Buffer, Input, Output };

// "pruning", "quantization", "distillation" (and back; nullopt for anything else).
const char* to_string(CompressorKind kind);
std::optional<CompressorKind> parse_compressor_kind(const std::string& name);
// "parameter", "buffer", "input", "output".
const char* to_string(TargetKind kind);

// Target name syntax, before any module is known. Parameter and buffer names are identifiers;
// "_input_" may be followed by a position or an argument name, "_output_" by a position or a key.
bool is_input_target_name(const std::string& name);   // starts with "_input_"
bool is_output_target_name(const std::string& name);  // starts with "_output_"
// Why `name` cannot be a target name, or "" when it can.
std::string target_name_problem(const std::string& name);

struct TargetSpace {
  std::string module_name;  // dotted, as Module::named_modules() names it ("" is the model)
  std::string module_type;  // Module::type_name()
  std::string target_name;  // canonical (see above)
  TargetKind target_kind = TargetKind::Parameter;
  boost::json::object settings;  // canonical, every default filled in (see above)
  size_t config_index = 0;       // the sub-config that configured this target
  // Quantization only: the modules fused into this one by `fuse_names`, this module first
  // (e.g. {"conv1", "bn1", "relu1"}); empty when the module is not fused.
  std::vector<std::string> fused_modules;
  // From a legacy (v1/v2) config list: quantizers then use v2's numerics where DECISIONS says
  // so (row 14: the uint symmetric zero point).
  bool legacy = false;

  // For input targets: the argument position i of "_input_<i>".
  size_t input_index() const;
};

// Every field equal (settings compared as JSON objects, key order aside).
bool operator==(const TargetSpace& a, const TargetSpace& b);
inline bool operator!=(const TargetSpace& a, const TargetSpace& b) { return !(a == b); }

}  // namespace shrink::compression::config
