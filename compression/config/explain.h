// What `shrink explain` prints: the canonical target table of a config list, as text for people
// or as one JSON object for scripts. Kept apart from the CLI so tests check the exact output.
#pragma once
#include <boost/json.hpp>
#include <string>
#include <vector>

#include "compression/config/target_space.h"

namespace shrink::compression::config {

// Targets sorted by module name, then target name (byte order).
std::vector<TargetSpace> sorted_for_explain(std::vector<TargetSpace> targets);

// {"targets": [{"module", "type", "target", "config_index", "settings"}...], "warnings": [...]}
// with targets sorted as sorted_for_explain — exactly these keys, the documented contract, so
// fusion (fuse_names) shows in the table only. The text form is one line; floats keep a decimal
// point (0.5, 1.0).
boost::json::object explain_json(const std::vector<TargetSpace>& targets, const std::vector<std::string>& warnings);
std::string explain_json_text(const std::vector<TargetSpace>& targets, const std::vector<std::string>& warnings);

// One row per target (module, type, target, kind, config index, settings as compact JSON, and the
// modules fused into it), then the warnings.
std::string explain_table(const std::vector<TargetSpace>& targets, const std::vector<std::string>& warnings);

}  // namespace shrink::compression::config
