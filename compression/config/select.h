// Module selection (NNI's select_modules_by_config) and target-name resolution against a module's
// parameters, buffers, declared arguments and output.
#pragma once
#include <string>
#include <vector>

#include "compression/config/sub_config.h"
#include "compression/config/target_space.h"
#include "framework/nn/module.h"

namespace shrink::compression::config {

struct NamedModule {
  std::string name;  // dotted; "" is the model itself
  const nn::Module* module = nullptr;
};

// Every module of `model` with its dotted name, in named_modules() order (pre-order, the model
// first as ""; a module held under several names appears under each).
std::vector<NamedModule> list_modules(const nn::Module& model);

// The modules `sub` selects, in model order:
//   S = op_names ∪ {names op_names_re matches at their start, as re.match} ∪ {names containing an
//       op_partial_names entry};  with op_types: S ∩ types if any name key is non-empty, else types;
//   minus exclude_op_names, exclude_op_names_re matches and exclude_op_types.
// A name in op_names that the model lacks is ignored with a warning (DECISIONS row 7).
std::vector<NamedModule> select_modules(const std::vector<NamedModule>& modules, const SubConfig& sub,
                                        std::vector<std::string>& warnings);

struct ResolvedTarget {
  std::string name;  // canonical: "_input_<i>", "_output_0" for "_output_", else as written
  TargetKind kind = TargetKind::Parameter;
  // False for a declared optional parameter or buffer that holds no tensor (a Conv2d built with
  // bias=false): there is nothing to compress, so no target space is made for it.
  bool present = true;
};

// Resolves `written` on `module`: "_input_" and "_input_<i>" by position, "_input_<name>" by the
// declared argument name (DECISIONS row 8), outputs by syntax alone (no forward is run), parameters
// and buffers by name. ConfigError at `path` naming the module and its targets when it has none
// of that name.
ResolvedTarget resolve_target(const NamedModule& module, const std::string& written, const std::string& path);

// "weight, bias, _input_0 (_input_input), _output_<i|key>": for error messages.
std::string describe_targets(const nn::Module& module);

// Looks a module up by name in `modules` (nullptr when absent).
const NamedModule* find_module(const std::vector<NamedModule>& modules, const std::string& name);

}  // namespace shrink::compression::config
