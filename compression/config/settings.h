// Per-target settings: which keys each compressor kind accepts and their canonical values, and the
// registry of default settings per compressor kind and module type (NNI's PruningSetting /
// QuantizationSetting / DistillationSetting). Canonical keys and value types: target_space.h.
//
// A module type's default settings map target names to setting templates. The keys a template
// lists are the keys a shorthand (a setting written at the top level of a sub-config) reaches: the
// pruning template of Linear gives `weight` every pruning key but `bias` only `align` and
// `apply_method`, so `sparse_ratio: 0.8` prunes the weight and the bias follows it. A target that
// a config names but the template lacks starts from the kind's full template
// (generic_target_settings).
#pragma once
#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compression/config/target_space.h"

namespace shrink::compression::config {

// ---- keys and values ----

// Whether `key` is a per-target setting of `kind` (usable as shorthand or in target_settings).
bool is_setting_key(CompressorKind kind, const std::string& key);
// Every setting key of `kind`, in canonical order.
std::vector<std::string> setting_keys(CompressorKind kind);
// The kinds that have `key` as a setting (empty for a key no compressor knows).
std::vector<CompressorKind> kinds_with_setting(const std::string& key);
// Checks `value` for setting `key` of `kind` and returns its canonical form (an integer lambda
// becomes a float, a single link name a list, align gets module_name). ConfigError at `path`.
boost::json::value canonical_setting(CompressorKind kind, const std::string& key,
                                     const boost::json::value& value, const std::string& path);

// One target's settings together with where each key was set, so that checks which combine
// keys can name the user's spelling of the culprit.
class TargetSettings {
 public:
  TargetSettings() = default;
  explicit TargetSettings(boost::json::object defaults) : values_(std::move(defaults)) {}
  void set(const std::string& key, boost::json::value value, const std::string& origin);
  const boost::json::object& values() const { return values_; }
  boost::json::object& values() { return values_; }
  // The config path that set `key`, or `fallback` when it holds a template default.
  std::string origin(const std::string& key, const std::string& fallback) const;

 private:
  boost::json::object values_;
  std::map<std::string, std::string> origins_;
};

// Rejects combinations of keys within one target: sparse_ratio with sparse_threshold (both
// non-null), min_sparse_ratio above max_sparse_ratio. `fallback` names defaults in messages.
void check_setting_combination(const TargetSettings& settings, const std::string& fallback);

// Fills what a null or absent key means: quant_dtype "int8", lambda 1.0, link [module_name],
// apply_method the kind's default — so consumers never interpret null themselves.
void fill_effective_defaults(CompressorKind kind, const std::string& module_name,
                             boost::json::object& settings);

// Every setting key of `kind` with its default: the template of a target a config names but the
// module type's template lacks (e.g. `_output_` of a pruned Linear).
const boost::json::object& generic_target_settings(CompressorKind kind);

// ---- the registry of default settings ----

// Registers (or replaces) the default settings of `module_type` for `kind`: an object mapping
// target names ("weight", "_input_", "_output_", ...) to templates, each checked like a
// target_settings entry. Example, to prune LayerNorm's weight:
//   register_default_settings(CompressorKind::Pruning, "LayerNorm",
//       {{"weight", generic_target_settings(CompressorKind::Pruning)}});
void register_default_settings(CompressorKind kind, const std::string& module_type,
                               const boost::json::object& targets);
// Removes a registration (built-in ones included); returns whether there was one.
bool unregister_default_settings(CompressorKind kind, const std::string& module_type);
// The default settings of `module_type`, or nullopt when it is not registered. Distillation
// accepts every module type: an unregistered one gets `_output_` with the distillation keys.
std::optional<boost::json::object> find_default_settings(CompressorKind kind,
                                                         const std::string& module_type);
std::vector<std::string> registered_module_types(CompressorKind kind);
// How to register `module_type`: the message for a config that selects an unregistered type.
std::string registration_hint(CompressorKind kind, const std::string& module_type);

// The weighted module types that legacy `op_types: ['default']` stands for: v1/v2's list
// (Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear, Bilinear, PReLU, Embedding, EmbeddingBag) limited
// to the types `kind` has default settings for (all of them for distillation).
std::vector<std::string> default_weighted_types(CompressorKind kind);

}  // namespace shrink::compression::config
