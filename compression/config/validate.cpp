// The config-list schema (validate.h): NNI's default_config_schema for each kind, plus the legacy
// keys of v1/v2, with every rejection naming its path.
#include "compression/config/validate.h"

#include <algorithm>
#include <optional>

#include "compression/config/config_error.h"
#include "compression/config/json_util.h"
#include "compression/config/legacy.h"
#include "compression/config/settings.h"

namespace shrink::compression::config {

namespace json = boost::json;
using detail::describe;
using detail::string_list;

namespace {

enum class KeyRole {
  SharedSelector,  // op_types, op_names: both formats
  Selector,        // op_names_re and the exclude_op_* keys
  Targets,         // target_names, target_settings
  FuseNames,       // quantization's fuse_names
  Setting,         // a per-target setting of some kind, as shorthand
  Legacy,
  Unknown,
};

const char* const kSelectorKeys[] = {"op_names_re", "exclude_op_names", "exclude_op_names_re", "exclude_op_types"};

KeyRole role_of(const std::string& key) {
  if (key == "op_types" || key == "op_names") return KeyRole::SharedSelector;
  if (std::find(std::begin(kSelectorKeys), std::end(kSelectorKeys), key) != std::end(kSelectorKeys))
    return KeyRole::Selector;
  if (key == "target_names" || key == "target_settings") return KeyRole::Targets;
  if (key == "fuse_names") return KeyRole::FuseNames;
  if (is_legacy_key(key)) return KeyRole::Legacy;
  if (!kinds_with_setting(key).empty()) return KeyRole::Setting;
  return KeyRole::Unknown;
}

// Where a legacy list's first legacy key is, for the error that rejects mixing formats.
struct LegacyMark {
  std::string key, path;
};

std::optional<LegacyMark> find_legacy_key(const json::array& list) {
  for (size_t i = 0; i < list.size(); ++i)
    if (const json::object* sub = list[i].if_object())
      for (const auto& kv : *sub)
        if (is_legacy_key(std::string(kv.key())))
          return LegacyMark{std::string(kv.key()), key_path(sub_config_path(i), std::string(kv.key()))};
  return std::nullopt;
}

std::string kinds_text(const std::vector<CompressorKind>& kinds) {
  std::string s;
  for (size_t i = 0; i < kinds.size(); ++i) s += (i ? "/" : "") + std::string(to_string(kinds[i]));
  return s;
}

std::vector<std::string> known_keys(CompressorKind kind, bool legacy) {
  std::vector<std::string> keys = {"op_types", "op_names"};
  if (legacy) {
    for (const char* k : {"exclude", "op_partial_names", "sparsity", "sparsity_per_layer", "total_sparsity",
                          "max_sparsity_per_layer", "quant_types", "quant_bits", "quant_start_step"})
      if (!legacy_key_kind(k) || *legacy_key_kind(k) == kind) keys.push_back(k);
    if (kind == CompressorKind::Quantization) keys.insert(keys.end(), {"quant_scheme", "quant_dtype"});
    return keys;
  }
  keys.insert(keys.end(), std::begin(kSelectorKeys), std::end(kSelectorKeys));
  keys.insert(keys.end(), {"target_names", "target_settings"});
  if (kind == CompressorKind::Quantization) keys.push_back("fuse_names");
  for (const auto& k : setting_keys(kind)) keys.push_back(k);
  return keys;
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& path, const std::vector<std::string>& known) {
  std::string guess = detail::closest(key, known);
  throw ConfigError(path, "unknown key" + (guess.empty() ? std::string() : " (did you mean '" + guess + "'?)"));
}

// Python's `re` spells named groups (?P<name>...) and (?P=name); Boost.Regex (?<name>...), \k<name>.
std::string python_to_boost_regex(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      out += text.substr(i, 2);
      ++i;
    } else if (text.compare(i, 4, "(?P<") == 0) {
      out += "(?<";
      i += 3;
    } else if (text.compare(i, 4, "(?P=") == 0 && text.find(')', i) != std::string::npos) {
      size_t close = text.find(')', i);
      out += "\\k<" + text.substr(i + 4, close - i - 4) + ">";
      i = close;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::vector<NamePattern> name_patterns(const json::value& v, const std::string& path) {
  std::vector<std::string> texts = string_list(v, path);
  std::vector<NamePattern> out;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string at = element_path(path, i);
    try {
      out.push_back({texts[i], at, boost::regex(python_to_boost_regex(texts[i]), boost::regex::perl)});
    } catch (const std::exception& e) {  // boost::regex_error, or resource limits on huge patterns
      throw ConfigError(at, "invalid regular expression " + describe(json::string(texts[i])) + ": " + e.what());
    }
  }
  return out;
}

// op_types, with legacy 'default' standing for the kind's weighted types (DECISIONS row 5).
std::vector<std::string> op_types_value(const json::value& v, const std::string& path, CompressorKind kind) {
  std::vector<std::string> out;
  for (const auto& type : string_list(v, path)) {
    std::vector<std::string> expanded = type == "default" ? default_weighted_types(kind) : std::vector<std::string>{type};
    for (const auto& t : expanded)
      if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  return out;
}

void check_target_name(const std::string& name, const std::string& path) {
  std::string problem = target_name_problem(name);
  if (!problem.empty()) throw ConfigError(path, problem + ", got " + describe(json::string(name)));
}

// One level of settings (the shorthand, or one target_settings entry): each key checked for `kind`.
WrittenSetting setting_value(CompressorKind kind, const std::string& key, const json::value& value,
                             const std::string& path, bool in_target_settings) {
  if (!is_setting_key(kind, key)) {
    std::vector<CompressorKind> owners = kinds_with_setting(key);
    if (!owners.empty())
      throw ConfigError(path, "a " + kinds_text(owners) + " setting, which the " + to_string(kind) +
                                  " compressor does not accept");
    if (in_target_settings && role_of(key) != KeyRole::Unknown)
      throw ConfigError(path, "not a target setting: '" + key + "' belongs at the top level of a sub-config");
    unknown_key(key, path, setting_keys(kind));
  }
  return {key, canonical_setting(kind, key, value, path), path};
}

void check_combination(const std::vector<WrittenSetting>& settings, const std::string& fallback) {
  TargetSettings level;
  for (const auto& s : settings) level.set(s.key, s.value, s.path);
  check_setting_combination(level, fallback);
}

void read_target_names(const json::value& v, const std::string& path, SubConfig& out) {
  out.target_names = string_list(v, path);
  if (out.target_names.empty()) throw ConfigError(path, "an empty list selects no targets");
  for (size_t i = 0; i < out.target_names.size(); ++i) check_target_name(out.target_names[i], element_path(path, i));
  out.has_target_names = true;
  out.target_names_path = path;
}

void read_target_settings(const json::value& v, const std::string& path, CompressorKind kind, SubConfig& out) {
  const json::object* targets = v.if_object();
  if (!targets) throw ConfigError(path, "expected an object {target name: settings}, got " + describe(v));
  for (const auto& kv : *targets) {
    std::string target(kv.key());
    std::string at = key_path(path, target);
    check_target_name(target, at);
    const json::object* settings = kv.value().if_object();
    if (!settings) throw ConfigError(at, "expected an object of settings, got " + describe(kv.value()));
    TargetSettingsEntry entry{target, at, {}};
    for (const auto& setting : *settings) {
      std::string key(setting.key());
      entry.settings.push_back(setting_value(kind, key, setting.value(), key_path(at, key), true));
    }
    check_combination(entry.settings, at);
    out.target_settings.push_back(std::move(entry));
  }
}

void read_fuse_names(const json::value& v, const std::string& path, SubConfig& out) {
  const json::array* groups = v.if_array();
  if (!groups) throw ConfigError(path, "expected a list of module-name lists such as [[\"conv1\", \"bn1\"]], got " + describe(v));
  for (size_t i = 0; i < groups->size(); ++i) {
    std::string at = element_path(path, i);
    std::vector<std::string> names = string_list((*groups)[i], at);
    if (names.size() < 2 || names.size() > 3)
      throw ConfigError(at, "a fusion names 2 or 3 modules (e.g. [\"conv1\", \"bn1\", \"relu1\"]), got " +
                                std::to_string(names.size()));
    for (size_t j = 1; j < names.size(); ++j)
      if (std::find(names.begin(), names.begin() + j, names[j]) != names.begin() + j)
        throw ConfigError(element_path(at, j), "'" + names[j] + "' is listed twice");
    out.fuse_groups.push_back({std::move(names), at});
  }
}

SubConfig read_sub_config(const json::object& raw, size_t index, CompressorKind kind,
                          const std::optional<LegacyMark>& legacy) {
  SubConfig out;
  out.index = index;
  out.path = sub_config_path(index);
  const std::vector<std::string> known = known_keys(kind, legacy.has_value());
  for (const auto& kv : raw) {
    const std::string key(kv.key());
    const std::string at = key_path(out.path, key);
    const json::value& v = kv.value();
    KeyRole role = role_of(key);
    if (role == KeyRole::Unknown) unknown_key(key, at, known);
    if (role == KeyRole::Legacy) {
      if (auto owner = legacy_key_kind(key); owner && *owner != kind)
        throw ConfigError(at, std::string("a legacy ") + to_string(*owner) + " key, which the " + to_string(kind) +
                                  " compressor does not accept");
      continue;  // translate_legacy_keys reads them all together
    }
    if (role == KeyRole::FuseNames && kind != CompressorKind::Quantization)
      throw ConfigError(at, std::string("a quantization key, which the ") + to_string(kind) +
                                " compressor does not accept");
    if (role == KeyRole::Setting && !is_setting_key(kind, key)) setting_value(kind, key, v, at, false);  // throws
    if (legacy && kind == CompressorKind::Quantization && is_legacy_quant_setting(key, v))
      continue;  // v2's quant_scheme / quant_dtype, read by translate_legacy_keys
    if (legacy && role != KeyRole::SharedSelector)  // DECISIONS row 3
      throw ConfigError(at, "cannot mix the v3 key '" + key + "' with the legacy key '" + legacy->key + "' (" +
                                legacy->path + ") in one config list; write the whole list in one format");
    switch (role) {
      case KeyRole::SharedSelector:
        if (key == "op_types") out.op_types = op_types_value(v, at, kind);
        else {
          out.op_names = string_list(v, at);
          out.op_names_path = at;
        }
        break;
      case KeyRole::Selector:
        if (key == "op_names_re") out.op_names_re = name_patterns(v, at);
        else if (key == "exclude_op_names_re") out.exclude_op_names_re = name_patterns(v, at);
        else if (key == "exclude_op_names") out.exclude_op_names = string_list(v, at);
        else out.exclude_op_types = op_types_value(v, at, kind);
        break;
      case KeyRole::Targets:
        if (key == "target_names") read_target_names(v, at, out);
        else read_target_settings(v, at, kind, out);
        break;
      case KeyRole::FuseNames: read_fuse_names(v, at, out); break;
      case KeyRole::Setting: out.shorthand.push_back(setting_value(kind, key, v, at, false)); break;
      case KeyRole::Legacy:
      case KeyRole::Unknown: break;
    }
  }
  if (legacy) translate_legacy_keys(raw, kind, out);
  check_combination(out.shorthand, out.path);

  // NNI's schema requires a selection key (Or('op_types', 'op_names', 'op_names_re')).
  const std::vector<const char*> selectors = legacy ? std::vector<const char*>{"op_types", "op_names", "op_partial_names"}
                                                    : std::vector<const char*>{"op_types", "op_names", "op_names_re"};
  if (std::none_of(selectors.begin(), selectors.end(), [&](const char* k) { return raw.contains(k); }))
    throw ConfigError(out.path, std::string("selects no modules: give ") + selectors[0] + ", " + selectors[1] +
                                    " or " + selectors[2]);
  return out;
}

}  // namespace

ConfigList validate_config_list(const json::value& config, CompressorKind kind) {
  const json::array* list = config.if_array();
  if (!list)
    throw ConfigError("config", "expected a list of sub-configs (a JSON array of objects), got " + describe(config));
  ConfigList out;
  std::optional<LegacyMark> legacy = find_legacy_key(*list);
  out.legacy = legacy.has_value();
  for (size_t i = 0; i < list->size(); ++i) {
    const json::object* raw = (*list)[i].if_object();
    if (!raw) throw ConfigError(sub_config_path(i), "expected an object of config keys, got " + describe((*list)[i]));
    out.sub_configs.push_back(read_sub_config(*raw, i, kind, legacy));
  }
  return out;
}

}  // namespace shrink::compression::config
