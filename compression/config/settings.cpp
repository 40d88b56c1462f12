// Setting keys, their checks and canonical forms, and the default-settings registry.
//
// JSON types accepted per key (NNI's schema, with DECISIONS.md where it differs):
//   ratios and thresholds must be JSON floats: `sparse_ratio: 1` is refused like NNI's schema does
//   (a ratio written as an integer is far more often a slip than a deliberate 100%); lambda takes
//   integers too (DECISIONS row 19). Booleans are never numbers. null means "the default" where the
//   default is "not set" (ratios, ids) or is filled in canonically (quant_dtype, lambda, link,
//   distillation apply_method); granularity and pruning/quantization apply_method have no null.
#include "compression/config/settings.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>

#include "compression/config/config_error.h"
#include "compression/config/json_util.h"

namespace shrink::compression::config {

namespace json = boost::json;
using detail::as_integer;
using detail::describe;

namespace {

[[noreturn]] void reject(const std::string& path, const std::string& expected, const json::value& got) {
  throw ConfigError(path, "expected " + expected + ", got " + describe(got));
}

std::string quoted_list(const std::vector<std::string>& items, const char* last_joiner = " or ") {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += (i + 1 == items.size()) ? last_joiner : ", ";
    s += "'" + items[i] + "'";
  }
  return s;
}

// A float in [0, 1] with either end open, or null.
json::value ratio_value(const json::value& v, const std::string& path, bool low_open, bool high_open) {
  if (v.is_null()) return v;
  std::string range = std::string(low_open ? "(" : "[") + "0.0, 1.0" + (high_open ? ")" : "]");
  if (v.is_int64() || v.is_uint64()) {
    bool whole_ratio = v.is_int64() && (v.get_int64() == 0 || v.get_int64() == 1);
    throw ConfigError(path, "expected a float in " + range + ", got " + describe(v) +
                                (whole_ratio ? "; ratios are floats: write " + std::to_string(v.get_int64()) + ".0"
                                             : std::string()));
  }
  if (!v.is_double()) reject(path, "a float in " + range + " or null", v);
  double d = v.get_double();
  bool low_ok = low_open ? d > 0.0 : d >= 0.0;
  bool high_ok = high_open ? d < 1.0 : d <= 1.0;
  if (!low_ok || !high_ok) throw ConfigError(path, "must be in " + range + ", got " + describe(v));
  return v;
}

json::value threshold_value(const json::value& v, const std::string& path) {
  if (v.is_null()) return v;
  if (as_integer(v) || v.is_uint64())
    throw ConfigError(path, "expected a float, got " + describe(v) + " (write it with a decimal point)");
  if (!v.is_double() || !std::isfinite(v.get_double())) reject(path, "a finite float or null", v);
  return v;
}

json::value group_id_value(const json::value& v, const std::string& path) {
  if (v.is_null() || v.is_string() || as_integer(v)) return v;
  reject(path, "an integer or a string (the group's id) or null", v);
}

json::value positive_integer_or_null(const json::value& v, const std::string& path) {
  if (v.is_null()) return v;
  auto i = as_integer(v);
  if (!i || *i < 1) reject(path, "a positive integer or null", v);
  return json::value(*i);
}

const std::vector<std::string> kGranularityNames = {"default", "in_channel", "out_channel", "per_channel"};

json::value granularity_value(const json::value& v, const std::string& path) {
  const std::string expected = quoted_list(kGranularityNames, ", ") +
                               " or a list of block sizes (positive integers, -1 for a whole dimension)";
  if (const json::string* s = v.if_string()) {
    if (std::find(kGranularityNames.begin(), kGranularityNames.end(), std::string(*s)) ==
        kGranularityNames.end())
      reject(path, expected, v);
    return v;
  }
  if (v.is_null())
    throw ConfigError(path, "null is not a granularity: use 'default', or a block list such as "
                            "[1, 1] for element-wise masks");
  const json::array* blocks = v.if_array();
  if (!blocks) reject(path, expected, v);
  if (blocks->empty()) throw ConfigError(path, "a block list needs at least one block size");
  json::array out;
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto k = as_integer((*blocks)[i]);
    if (!k || (*k < 1 && *k != -1))
      reject(element_path(path, i), "a positive block size or -1", (*blocks)[i]);
    out.emplace_back(*k);
  }
  return out;
}

json::value one_of(const json::value& v, const std::string& path, const std::vector<std::string>& names,
                   bool nullable) {
  if (nullable && v.is_null()) return v;
  const json::string* s = v.if_string();
  if (!s || std::find(names.begin(), names.end(), std::string(*s)) == names.end())
    reject(path, quoted_list(names) + (nullable ? " or null" : ""), v);
  return v;
}

json::value apply_method_value(CompressorKind kind, const json::value& v, const std::string& path) {
  switch (kind) {
    case CompressorKind::Pruning: return one_of(v, path, {"mul", "add", "bypass"}, false);
    case CompressorKind::Quantization:
      return one_of(v, path, {"clamp_round", "qat_clamp_round", "bypass"}, false);
    case CompressorKind::Distillation: return one_of(v, path, {"mse", "kl"}, true);
  }
  return v;
}

json::value align_value(const json::value& v, const std::string& path) {
  if (v.is_null()) return v;
  const json::object* o = v.if_object();
  if (!o) reject(path, "an object {\"target_name\": ..., \"dims\": [...]} or null", v);
  json::value module_name = nullptr, target_name, dims;
  for (const auto& kv : *o) {
    std::string key(kv.key());
    std::string key_at = key_path(path, key);
    if (key == "module_name") {
      if (!kv.value().is_null() && !kv.value().is_string())
        reject(key_at, "a module name or null (the aligned module itself)", kv.value());
      module_name = kv.value();
    } else if (key == "target_name") {
      const json::string* s = kv.value().if_string();
      if (!s) reject(key_at, "a target name", kv.value());
      std::string problem = target_name_problem(std::string(*s));
      if (!problem.empty()) throw ConfigError(key_at, problem + ", got " + describe(kv.value()));
      target_name = kv.value();
    } else if (key == "dims") {
      const json::array* a = kv.value().if_array();
      if (!a || a->empty()) reject(key_at, "a non-empty list of dimensions", kv.value());
      json::array out;
      std::set<int64_t> seen;
      for (size_t i = 0; i < a->size(); ++i) {
        auto d = as_integer((*a)[i]);
        if (!d) reject(element_path(key_at, i), "an integer dimension", (*a)[i]);
        if (!seen.insert(*d).second)
          throw ConfigError(element_path(key_at, i), "dimension " + std::to_string(*d) + " is listed twice");
        out.emplace_back(*d);
      }
      dims = std::move(out);
    } else {
      throw ConfigError(key_at, "unknown key (align has 'module_name', 'target_name' and 'dims')");
    }
  }
  if (target_name.is_null()) throw ConfigError(path, "missing 'target_name' (the target to follow)");
  if (dims.is_null()) throw ConfigError(path, "missing 'dims' (the dimensions that follow the target)");
  return json::object{{"module_name", module_name}, {"target_name", target_name}, {"dims", dims}};
}

json::value quant_dtype_value(const json::value& v, const std::string& path) {
  if (v.is_null()) return v;
  const std::string expected = "'int<N>' or 'uint<N>' with N in 1..32 (e.g. 'int8'), or null";
  const json::string* s = v.if_string();
  if (!s) reject(path, expected, v);
  std::string text(*s);
  size_t digits = text.rfind("int", 0) == 0 ? 3 : text.rfind("uint", 0) == 0 ? 4 : 0;
  std::string bits = digits ? text.substr(digits) : "";
  bool ok = !bits.empty() && bits.size() <= 2 && bits[0] != '0' &&
            std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
            std::stoi(bits) <= 32;
  if (!ok) reject(path, expected, v);
  return v;
}

json::value quant_scheme_value(const json::value& v, const std::string& path) {
  if (const json::string* s = v.if_string(); s && s->find("per_") == 0)
    throw ConfigError(path, "expected 'affine' or 'symmetric', got " + describe(v) +
                                " (a v2 scheme: write quant_scheme 'affine'/'symmetric' and put "
                                "per-channel in granularity)");
  return one_of(v, path, {"affine", "symmetric"}, true);
}

json::value lambda_value(const json::value& v, const std::string& path) {
  if (v.is_null()) return v;
  // DECISIONS row 19: an integer lambda is the same scale as a float one.
  double d;
  if (auto i = as_integer(v)) d = static_cast<double>(*i);
  else if (v.is_double()) d = v.get_double();
  else reject(path, "a number >= 0 (the distillation loss scale) or null", v);
  if (!std::isfinite(d) || d < 0.0) reject(path, "a finite number >= 0", v);
  return json::value(d);
}

json::value link_value(const json::value& v, const std::string& path) {
  if (v.is_null()) return v;
  if (const json::string* s = v.if_string()) {
    if (s->empty()) throw ConfigError(path, "an empty teacher module name");
    return json::array{v};
  }
  const json::array* a = v.if_array();
  if (!a || a->empty()) reject(path, "a teacher module name or a non-empty list of names", v);
  for (size_t i = 0; i < a->size(); ++i) {
    const json::string* s = (*a)[i].if_string();
    if (!s || s->empty()) reject(element_path(path, i), "a teacher module name", (*a)[i]);
  }
  return *a;
}

struct KeySpec {
  const char* name;
  bool pruning, quantization, distillation;
};
// Canonical order: pruning keys as in NNI's weight template, then the others.
const KeySpec kKeys[] = {
    {"sparse_ratio", true, false, false},        {"max_sparse_ratio", true, false, false},
    {"min_sparse_ratio", true, false, false},    {"sparse_threshold", true, false, false},
    {"global_group_id", true, false, false},     {"dependency_group_id", true, false, false},
    {"quant_dtype", false, true, false},         {"quant_scheme", false, true, false},
    {"granularity", true, true, false},          {"internal_metric_block", true, false, false},
    {"lambda", false, false, true},              {"link", false, false, true},
    {"apply_method", true, true, true},          {"align", true, false, false},
};

bool has_kind(const KeySpec& spec, CompressorKind kind) {
  switch (kind) {
    case CompressorKind::Pruning: return spec.pruning;
    case CompressorKind::Quantization: return spec.quantization;
    case CompressorKind::Distillation: return spec.distillation;
  }
  return false;
}

size_t kind_slot(CompressorKind kind) { return static_cast<size_t>(kind); }

json::object pruning_weight_template() {
  return {{"sparse_ratio", nullptr},     {"max_sparse_ratio", nullptr},
          {"min_sparse_ratio", nullptr}, {"sparse_threshold", nullptr},
          {"global_group_id", nullptr},  {"dependency_group_id", nullptr},
          {"granularity", "default"},    {"internal_metric_block", nullptr},
          {"apply_method", "mul"}};
}
json::object pruning_bias_template() {
  return {{"align", json::object{{"module_name", nullptr}, {"target_name", "weight"}, {"dims", json::array{0}}}},
          {"apply_method", "mul"}};
}
json::object quantization_template() {
  return {{"quant_dtype", nullptr}, {"quant_scheme", nullptr}, {"granularity", "default"},
          {"apply_method", "clamp_round"}};
}
json::object distillation_template() {
  return {{"lambda", nullptr}, {"link", nullptr}, {"apply_method", nullptr}};
}

// Module types whose weights v1/v2 compressed for `op_types: ['default']`.
const std::vector<std::string> kWeightedTypes = {
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "Linear", "Bilinear", "PReLU", "Embedding", "EmbeddingBag"};

class Registry {
 public:
  Registry() {
    json::object weighted{{"weight", pruning_weight_template()}, {"bias", pruning_bias_template()}};
    for (const char* type : {"Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                             "ConvTranspose3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"})
      types_[kind_slot(CompressorKind::Pruning)][type] = weighted;
    types_[kind_slot(CompressorKind::Pruning)]["Embedding"] = {{"weight", pruning_weight_template()}};

    json::object quantized{{"_input_", quantization_template()}, {"weight", quantization_template()},
                           {"bias", quantization_template()}, {"_output_", quantization_template()}};
    for (const char* type : {"Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                             "ConvTranspose3d", "BatchNorm1d", "BatchNorm2d"})
      types_[kind_slot(CompressorKind::Quantization)][type] = quantized;
    json::object activation{{"_input_", quantization_template()}, {"_output_", quantization_template()}};
    for (const char* type : {"ReLU", "ReLU6", "Hardtanh", "MaxPool2d"})
      types_[kind_slot(CompressorKind::Quantization)][type] = activation;
  }

  void set(CompressorKind kind, const std::string& type, json::object targets) {
    std::lock_guard<std::mutex> lock(mutex_);
    types_[kind_slot(kind)][type] = std::move(targets);
  }
  bool erase(CompressorKind kind, const std::string& type) {
    std::lock_guard<std::mutex> lock(mutex_);
    return types_[kind_slot(kind)].erase(type) > 0;
  }
  std::optional<json::object> find(CompressorKind kind, const std::string& type) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& table = types_[kind_slot(kind)];
    auto it = table.find(type);
    if (it == table.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> names(CompressorKind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [name, targets] : types_[kind_slot(kind)]) out.push_back(name);
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, json::object> types_[3];
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

// ---- keys and values ----

bool is_setting_key(CompressorKind kind, const std::string& key) {
  for (const auto& spec : kKeys)
    if (key == spec.name) return has_kind(spec, kind);
  return false;
}

std::vector<std::string> setting_keys(CompressorKind kind) {
  std::vector<std::string> out;
  for (const auto& spec : kKeys)
    if (has_kind(spec, kind)) out.push_back(spec.name);
  return out;
}

std::vector<CompressorKind> kinds_with_setting(const std::string& key) {
  std::vector<CompressorKind> out;
  for (const auto& spec : kKeys)
    if (key == spec.name)
      for (auto kind : {CompressorKind::Pruning, CompressorKind::Quantization, CompressorKind::Distillation})
        if (has_kind(spec, kind)) out.push_back(kind);
  return out;
}

json::value canonical_setting(CompressorKind kind, const std::string& key, const json::value& value,
                              const std::string& path) {
  if (!is_setting_key(kind, key))
    throw ConfigError(path, "not a " + std::string(to_string(kind)) + " setting");
  if (key == "sparse_ratio") return ratio_value(value, path, false, false);
  if (key == "max_sparse_ratio") return ratio_value(value, path, true, false);
  if (key == "min_sparse_ratio") return ratio_value(value, path, false, true);
  if (key == "sparse_threshold") return threshold_value(value, path);
  if (key == "global_group_id" || key == "dependency_group_id") return group_id_value(value, path);
  if (key == "granularity") return granularity_value(value, path);
  if (key == "internal_metric_block") return positive_integer_or_null(value, path);
  if (key == "apply_method") return apply_method_value(kind, value, path);
  if (key == "align") return align_value(value, path);
  if (key == "quant_dtype") return quant_dtype_value(value, path);
  if (key == "quant_scheme") return quant_scheme_value(value, path);
  if (key == "lambda") return lambda_value(value, path);
  if (key == "link") return link_value(value, path);
  throw ConfigError(path, "internal error: no check for setting '" + key + "'");
}

void TargetSettings::set(const std::string& key, json::value value, const std::string& origin) {
  values_[key] = std::move(value);
  origins_[key] = origin;
}

std::string TargetSettings::origin(const std::string& key, const std::string& fallback) const {
  auto it = origins_.find(key);
  return it == origins_.end() ? fallback : it->second;
}

void check_setting_combination(const TargetSettings& settings, const std::string& fallback) {
  const json::object& v = settings.values();
  auto value_of = [&](const char* key) -> const json::value* {
    auto it = v.find(key);
    return it == v.end() || it->value().is_null() ? nullptr : &it->value();
  };
  if (value_of("sparse_ratio") && value_of("sparse_threshold"))
    throw ConfigError(settings.origin("sparse_threshold", fallback),
                      "cannot be combined with 'sparse_ratio' (" + settings.origin("sparse_ratio", fallback) +
                          "): a target is pruned either to a ratio or by a threshold");
  const json::value* low = value_of("min_sparse_ratio");
  const json::value* high = value_of("max_sparse_ratio");
  if (low && high && low->is_double() && high->is_double() && low->get_double() > high->get_double())
    throw ConfigError(settings.origin("min_sparse_ratio", fallback),
                      "min_sparse_ratio " + describe(*low) + " is above max_sparse_ratio " + describe(*high) +
                          " (" + settings.origin("max_sparse_ratio", fallback) + ")");
}

void fill_effective_defaults(CompressorKind kind, const std::string& module_name, json::object& settings) {
  auto unset = [&](const char* key) {
    auto it = settings.find(key);
    return it == settings.end() || it->value().is_null();
  };
  switch (kind) {
    case CompressorKind::Pruning:
      if (unset("apply_method")) settings["apply_method"] = "mul";
      break;
    case CompressorKind::Quantization:
      if (unset("quant_dtype")) settings["quant_dtype"] = "int8";  // DECISIONS row 20
      if (unset("apply_method")) settings["apply_method"] = "clamp_round";
      break;
    case CompressorKind::Distillation:
      if (unset("lambda")) settings["lambda"] = 1.0;
      if (unset("link")) settings["link"] = json::array{json::string(module_name)};
      if (unset("apply_method")) settings["apply_method"] = "mse";
      break;
  }
}

const json::object& generic_target_settings(CompressorKind kind) {
  static const json::object pruning = pruning_weight_template();
  static const json::object quantization = quantization_template();
  static const json::object distillation = distillation_template();
  switch (kind) {
    case CompressorKind::Pruning: return pruning;
    case CompressorKind::Quantization: return quantization;
    case CompressorKind::Distillation: return distillation;
  }
  return pruning;
}

// ---- registry ----

void register_default_settings(CompressorKind kind, const std::string& module_type, const json::object& targets) {
  const std::string path = std::string("register_default_settings(") + to_string(kind) + ", '" + module_type + "')";
  if (module_type.empty()) throw ConfigError(path, "empty module type name");
  json::object checked;
  for (const auto& kv : targets) {
    std::string target(kv.key());
    std::string target_at = key_path(path, target);
    std::string problem = target_name_problem(target);
    if (!problem.empty()) throw ConfigError(target_at, problem);
    const json::object* settings = kv.value().if_object();
    if (!settings) reject(target_at, "an object of settings", kv.value());
    json::object canonical;
    for (const auto& setting : *settings) {
      std::string key(setting.key());
      canonical[key] = canonical_setting(kind, key, setting.value(), key_path(target_at, key));
    }
    checked[target] = std::move(canonical);
  }
  registry().set(kind, module_type, std::move(checked));
}

bool unregister_default_settings(CompressorKind kind, const std::string& module_type) {
  return registry().erase(kind, module_type);
}

std::optional<json::object> find_default_settings(CompressorKind kind, const std::string& module_type) {
  if (auto found = registry().find(kind, module_type)) return found;
  // NNI's DistillationSetting registers any module type on first use: every output can be matched.
  if (kind == CompressorKind::Distillation) return json::object{{"_output_", distillation_template()}};
  return std::nullopt;
}

std::vector<std::string> registered_module_types(CompressorKind kind) { return registry().names(kind); }

std::string registration_hint(CompressorKind kind, const std::string& module_type) {
  const char* enumerator = kind == CompressorKind::Pruning ? "Pruning" : "Quantization";
  std::string registered;
  for (const auto& name : registered_module_types(kind)) registered += (registered.empty() ? "" : ", ") + name;
  return "module type '" + module_type + "' has no default " + to_string(kind) +
         " settings; exclude it from the selection (e.g. with op_types or exclude_op_types), or "
         "register its targets first: shrink::compression::config::register_default_settings("
         "CompressorKind::" + enumerator + ", \"" + module_type + "\", {{\"weight\", "
         "generic_target_settings(CompressorKind::" + enumerator + ")}}) (registered types: " +
         registered + ")";
}

std::vector<std::string> default_weighted_types(CompressorKind kind) {
  std::vector<std::string> out;
  for (const auto& type : kWeightedTypes)
    if (kind == CompressorKind::Distillation || registry().find(kind, type)) out.push_back(type);
  return out;
}

}  // namespace shrink::compression::config
