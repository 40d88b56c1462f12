// The config-list schema: everything about a config list that can be checked without the model —
// structure, known keys, keys of another compressor kind, value types and ranges, mutually
// exclusive keys, regular expressions, legacy keys mixed with v3-only ones — in document order,
// so the first error reported is the first mistake in the text.
#pragma once
#include <boost/json.hpp>

#include "compression/config/sub_config.h"
#include "compression/config/target_space.h"

namespace shrink::compression::config {

// Checks `config` (a JSON array of sub-config objects) for a compressor of `kind` and returns it
// as SubConfigs, legacy keys translated. Throws ConfigError `config[<i>].<key>: ...`.
ConfigList validate_config_list(const boost::json::value& config, CompressorKind kind);

}  // namespace shrink::compression::config
