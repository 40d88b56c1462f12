// Legacy key checks (v2's schemas: sparsities are floats in [0, 1), max_sparsity_per_layer in
// (0, 1], quant_bits an integer or a per-type map) and their translation; see legacy.h.
#include "compression/config/legacy.h"

#include <algorithm>

#include "compression/config/config_error.h"
#include "compression/config/json_util.h"

namespace shrink::compression::config {

namespace json = boost::json;
using detail::as_integer;
using detail::describe;

namespace {

const char* const kSparsityKeys[] = {"sparsity", "sparsity_per_layer", "total_sparsity"};
const char* const kPruningKeys[] = {"sparsity", "sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer"};
const char* const kQuantizationKeys[] = {"quant_types", "quant_bits", "quant_start_step"};
const int kLegacyDefaultBits = 8;

template <size_t N>
bool listed(const char* const (&keys)[N], const std::string& key) {
  return std::find_if(std::begin(keys), std::end(keys), [&](const char* k) { return key == k; }) != std::end(keys);
}

// v2's `And(float, lambda n: low < n < high)` with the given open/closed ends.
json::value legacy_ratio(const json::value& v, const std::string& path, bool low_open, bool high_open) {
  std::string range = std::string(low_open ? "(" : "[") + "0.0, 1.0" + (high_open ? ")" : "]");
  if (!v.is_double()) throw ConfigError(path, "expected a float in " + range + ", got " + describe(v));
  double d = v.get_double();
  bool ok = (low_open ? d > 0.0 : d >= 0.0) && (high_open ? d < 1.0 : d <= 1.0);
  if (!ok) throw ConfigError(path, "must be in " + range + ", got " + describe(v));
  return v;
}

int legacy_bits(const json::value& v, const std::string& path) {
  auto bits = as_integer(v);
  if (!bits || *bits < 1 || *bits > 32) throw ConfigError(path, "expected a bit width in 1..32, got " + describe(v));
  return static_cast<int>(*bits);
}

std::string quant_type_target(const std::string& type) {
  if (type == "input") return "_input_";
  if (type == "output") return "_output_";
  return "weight";
}

void translate_pruning(const json::object& raw, size_t index, const std::string& at, SubConfig& out) {
  const char* sparsity_key = nullptr;
  for (const char* key : kSparsityKeys) {
    if (!raw.contains(key)) continue;
    if (sparsity_key)
      throw ConfigError(key_path(at, key), std::string("cannot be combined with '") + sparsity_key +
                                                "' (" + key_path(at, sparsity_key) + "): give one sparsity per sub-config");
    sparsity_key = key;
  }
  if (sparsity_key) {
    std::string path = key_path(at, sparsity_key);
    out.shorthand.push_back({"sparse_ratio", legacy_ratio(raw.at(sparsity_key), path, false, true), path});
    // DECISIONS row 4: the sub-config's modules share the ratio through one global group.
    if (std::string(sparsity_key) == "total_sparsity")
      out.shorthand.push_back({"global_group_id", json::value(static_cast<int64_t>(index)), path});
  }
  if (const json::value* max = raw.if_contains("max_sparsity_per_layer")) {
    std::string path = key_path(at, "max_sparsity_per_layer");
    out.shorthand.push_back({"max_sparse_ratio", legacy_ratio(*max, path, true, false), path});
  }
}

std::vector<std::string> quant_types(const json::value& v, const std::string& path) {
  std::vector<std::string> types;
  if (v.is_string()) types.emplace_back(v.get_string());
  else types = detail::string_list(v, path);
  if (types.empty()) throw ConfigError(path, "names no quantization type ('input', 'weight', 'output')");
  std::vector<std::string> unique;
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] != "input" && types[i] != "weight" && types[i] != "output")
      throw ConfigError(v.is_string() ? path : element_path(path, i),
                        "expected 'input', 'weight' or 'output', got " + describe(json::string(types[i])));
    if (std::find(unique.begin(), unique.end(), types[i]) == unique.end()) unique.push_back(types[i]);
  }
  return unique;
}

void translate_quantization(const json::object& raw, const std::string& at, SubConfig& out) {
  const json::value* types_value = raw.if_contains("quant_types");
  const json::value* bits_value = raw.if_contains("quant_bits");
  if (types_value && !bits_value)
    throw ConfigError(key_path(at, "quant_types"), "needs quant_bits (the bit width of each quantization type)");
  if (bits_value && !types_value)
    throw ConfigError(key_path(at, "quant_bits"), "needs quant_types (what to quantize: 'input', 'weight', 'output')");

  // v2's scheme and signedness (defaults per_tensor_affine, uint: DECISIONS row 6).
  std::string scheme = "affine", sign = "uint";
  bool per_channel = false;
  std::string scheme_path = types_value ? key_path(at, "quant_types") : at;
  if (const json::value* v = raw.if_contains("quant_scheme")) {
    scheme_path = key_path(at, "quant_scheme");
    const json::string* text = v->if_string();
    const std::string given = text ? std::string(*text) : "";
    if (given == "per_tensor_affine") scheme = "affine";
    else if (given == "per_tensor_symmetric") scheme = "symmetric";
    else if (given == "per_channel_affine" || given == "per_channel_symmetric") {
      scheme = given.substr(12);
      per_channel = true;
    } else {
      throw ConfigError(scheme_path, "expected 'per_tensor_affine', 'per_tensor_symmetric', 'per_channel_affine' "
                                     "or 'per_channel_symmetric', got " + describe(*v));
    }
    if (per_channel && !types_value)
      throw ConfigError(scheme_path, "a per-channel scheme needs quant_types (per channel of what)");
  }
  if (const json::value* v = raw.if_contains("quant_dtype")) {
    const json::string* text = v->if_string();
    if (!text || (*text != "int" && *text != "uint"))
      throw ConfigError(key_path(at, "quant_dtype"), "expected 'int' or 'uint' (v2: the bit width is quant_bits), got " +
                                                         describe(*v));
    sign = std::string(*text);
  }
  out.every_target.push_back(WrittenSetting{"quant_scheme", json::value(scheme), scheme_path});
  if (!types_value) {
    out.every_target.push_back(
        WrittenSetting{"quant_dtype", json::value(sign + std::to_string(kLegacyDefaultBits)), at});
  } else {
    std::vector<std::string> types = quant_types(*types_value, key_path(at, "quant_types"));
    std::string bits_path = key_path(at, "quant_bits");
    if (const json::object* per_type = bits_value->if_object()) {
      for (const auto& kv : *per_type) {
        std::string type(kv.key());
        if (std::find(types.begin(), types.end(), type) == types.end())
          throw ConfigError(key_path(bits_path, type),
                            type == "input" || type == "weight" || type == "output"
                                ? "'" + type + "' is not in quant_types"
                                : "unknown quantization type (expected 'input', 'weight' or 'output')");
      }
    } else if (!as_integer(*bits_value)) {
      throw ConfigError(bits_path, "expected a bit width (an integer) or a map {type: bits}, got " + describe(*bits_value));
    }
    out.has_target_names = true;
    out.target_names_path = key_path(at, "quant_types");
    for (const auto& type : types) {
      std::string target = quant_type_target(type);
      out.target_names.push_back(target);
      int bits;
      std::string path = bits_path;
      if (const json::object* per_type = bits_value->if_object()) {
        path = key_path(bits_path, type);
        const json::value* b = per_type->if_contains(type);
        if (!b) throw ConfigError(bits_path, "no bit width for quantization type '" + type + "'");
        bits = legacy_bits(*b, path);
      } else {
        bits = legacy_bits(*bits_value, path);
      }
      WrittenSetting dtype{"quant_dtype", json::value(sign + std::to_string(bits)), path};
      TargetSettingsEntry entry{target, out.target_names_path, {dtype}};
      if (per_channel)
        entry.settings.push_back({"granularity", json::value(target == "weight" ? "out_channel" : "per_channel"), scheme_path});
      out.target_settings.push_back(std::move(entry));
    }
  }
  if (const json::value* start = raw.if_contains("quant_start_step")) {
    std::string path = key_path(at, "quant_start_step");
    auto step = as_integer(*start);
    if (!step || *step < 0) throw ConfigError(path, "expected a step number >= 0, got " + describe(*start));
    out.every_target.push_back({"quant_start_step", json::value(*step), path});
  }
}

}  // namespace

bool is_legacy_quant_setting(const std::string& key, const json::value& value) {
  const json::string* s = value.if_string();
  if (key == "quant_dtype") return s && (*s == "int" || *s == "uint");
  return key == "quant_scheme" && s && std::string(*s).rfind("per_", 0) == 0;
}

bool is_legacy_key(const std::string& key) {
  return key == "exclude" || key == "op_partial_names" || listed(kPruningKeys, key) || listed(kQuantizationKeys, key);
}

std::optional<CompressorKind> legacy_key_kind(const std::string& key) {
  if (listed(kPruningKeys, key)) return CompressorKind::Pruning;
  if (listed(kQuantizationKeys, key)) return CompressorKind::Quantization;
  return std::nullopt;
}

void translate_legacy_keys(const json::object& raw, CompressorKind kind, SubConfig& out) {
  const std::string& at = out.path;
  if (const json::value* partial = raw.if_contains("op_partial_names"))
    out.partial_names = detail::string_list(*partial, key_path(at, "op_partial_names"));

  if (const json::value* exclude = raw.if_contains("exclude")) {
    std::string path = key_path(at, "exclude");
    if (!exclude->is_bool()) throw ConfigError(path, "expected true or false, got " + describe(*exclude));
    // The spec: exclude and the compression keys are mutually exclusive in one sub-config.
    for (const auto& kv : raw) {
      std::string key(kv.key());
      if (key != "exclude" && legacy_key_kind(key))
        throw ConfigError(key_path(at, key), "cannot be combined with 'exclude' (" + path +
                                                 "): an exclude sub-config only names modules to leave uncompressed");
    }
    out.exclude = exclude->get_bool();
    if (out.exclude) return;
  }
  if (kind == CompressorKind::Pruning) translate_pruning(raw, out.index, at, out);
  if (kind == CompressorKind::Quantization) translate_quantization(raw, at, out);
}

}  // namespace shrink::compression::config
