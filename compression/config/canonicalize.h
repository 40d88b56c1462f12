// Canonical settings of the targets one sub-config gives one module (NNI's canonicalize_settings,
// nni-semantics.md §1.4), with shrink's fixes: a named target the template lacks starts from the
// kind's full template instead of a KeyError, and "_input_x" reaches argument x.
#pragma once
#include <string>
#include <vector>

#include "compression/config/select.h"
#include "compression/config/settings.h"
#include "compression/config/sub_config.h"
#include "compression/config/target_space.h"

namespace shrink::compression::config {

// A target space with where each setting was written, until the checks that look across targets
// (align sources, group ratios, fusion) are done.
struct PendingTarget {
  TargetSpace space;        // everything but `settings`, which `settings` holds until then
  TargetSettings settings;  // values and the paths that set them
  std::string config_path;  // "config[i]": names settings nobody wrote (template defaults)
};

// The targets `sub` configures on `module`, in order (target_names, or the template's targets):
//   1. the module type's default settings from the registry (an unregistered type is an error
//      saying how to register it); a target the template lacks starts from
//      generic_target_settings(kind); "_input_"/"_output_" templates serve every input/output;
//   2. each shorthand key, on the targets whose template has that key;
//   3. target_settings: a bare "_input_"/"_output_" entry for every input/output target, then the
//      entry naming the target itself (any spelling), key by key;
//   4. the effective defaults (fill_effective_defaults), then per-target checks: mutually
//      exclusive keys, and granularity against the target (in_channel/out_channel only on
//      parameters; no more block dimensions than the parameter has).
// Declared optional parameters that hold no tensor (bias=false) give no target.
std::vector<PendingTarget> canonicalize_module(CompressorKind kind, const NamedModule& module, const SubConfig& sub);

}  // namespace shrink::compression::config
