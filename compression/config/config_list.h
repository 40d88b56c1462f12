// The public entry of compression/config: a config list and a model in, the ordered list of
// TargetSpaces (target_space.h) out — what wrappers and compressors consume.
//
// Pipeline: check the list without the model (validate.h; legacy keys translated, legacy.h) →
// select modules per sub-config (select.h) → apply precedence → canonicalize each selected
// module's targets (canonicalize.h) → cross-target checks (align sources, group ratios,
// fuse_names) → TargetSpaces.
//
// Precedence (DECISIONS rows 1-2):
//   v3 list:     sub-configs in order; the first to configure a (module, target) keeps it, a later
//                one is ignored for that target with a warning naming both; later sub-configs may
//                still add other targets of the same module.
//   legacy list: a module belongs to the last sub-config that selects it (v1/v2); an
//                `exclude: true` sub-config takes its modules away from the sub-configs before it.
//
// Output order: sub-config order, then model order (named_modules), then target order
// (target_names, or the module type's default targets).
// Warnings (never errors): a name in op_names the model lacks; a target configured twice.
#pragma once
#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "compression/config/config_error.h"
#include "compression/config/target_space.h"
#include "framework/nn/module.h"

namespace shrink::compression::config {

// `config` is NNI's config_list as JSON: an array of sub-config objects. Throws ConfigError
// (`config[<i>].<key>: ...`) for anything invalid; appends warnings to `warnings` when given.
std::vector<TargetSpace> parse_config_list(const nn::Module& model, const boost::json::value& config,
                                           CompressorKind kind, std::vector<std::string>* warnings = nullptr);
// The same from JSON text, and from a JSON file.
std::vector<TargetSpace> parse_config_list_json(const nn::Module& model, std::string_view json_text,
                                                CompressorKind kind, std::vector<std::string>* warnings = nullptr);
std::vector<TargetSpace> load_config_list(const nn::Module& model, const std::string& path, CompressorKind kind,
                                          std::vector<std::string>* warnings = nullptr);

// Strict JSON text to a value; ConfigError "config: invalid JSON at line L, column C: ..." (with
// a hint when the text looks like Python: True/False/None, single quotes).
boost::json::value parse_config_json(std::string_view json_text);

}  // namespace shrink::compression::config
