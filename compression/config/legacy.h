// Legacy (v1/v2) config keys and their translation into the canonical form, with the semantics of
// DECISIONS.md rows 2-6 rather than NNI 3.0's trans_legacy_config_list:
//   exclude: true            names modules that sub-configs *before* it leave alone
//   op_partial_names [p]     selects every module whose name contains p
//   sparsity, sparsity_per_layer = s   sparse_ratio s (shorthand: reaches `weight`)
//   total_sparsity = s       sparse_ratio s with one global_group_id per sub-config (the
//                            sub-config's index), so the ratio is shared across its modules
//   max_sparsity_per_layer   max_sparse_ratio
//   quant_types, quant_bits  targets _input_/weight/_output_ with quant_dtype uint<bits> and
//                            quant_scheme affine (v1/v2 defaults); a legacy quantization sub-config
//                            without them quantizes its default targets as uint8, affine
//   quant_start_step         quant_start_step on each target, read by the QAT quantizer
//   quant_dtype 'int'|'uint' v2's signedness of every quant_bits width (default 'uint')
//   quant_scheme (v2)        'per_tensor_affine' (default) | 'per_tensor_symmetric' |
//                            'per_channel_affine' | 'per_channel_symmetric'; per_channel is
//                            granularity out_channel for weights and per_channel for inputs/outputs
#pragma once
#include <boost/json.hpp>
#include <optional>
#include <string>

#include "compression/config/sub_config.h"
#include "compression/config/target_space.h"

namespace shrink::compression::config {

// The keys that make a config list legacy (DECISIONS row 2).
bool is_legacy_key(const std::string& key);
// v2's quant_scheme ('per_...') / quant_dtype ('int', 'uint'): v3 keys too, so they do not make
// a list legacy, but a legacy quantization sub-config takes them in their v2 form (a v3 value
// there is the mix DECISIONS row 3 rejects).
bool is_legacy_quant_setting(const std::string& key, const boost::json::value& value);
// The kind a legacy key belongs to; nullopt for exclude and op_partial_names, which select modules
// for any kind.
std::optional<CompressorKind> legacy_key_kind(const std::string& key);

// Checks the legacy keys of sub-config `raw` (its other keys are checked by the caller) and writes
// their meaning into `out`. Called for every sub-config of a legacy list, since a legacy
// quantization sub-config that sets no bits still gets v1/v2's defaults.
void translate_legacy_keys(const boost::json::object& raw, CompressorKind kind, SubConfig& out);

}  // namespace shrink::compression::config
