// The config-list pipeline (config_list.h): precedence and the checks that look across targets.
#include "compression/config/config_list.h"

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "compression/config/canonicalize.h"
#include "compression/config/fuse.h"
#include "compression/config/json_util.h"
#include "compression/config/select.h"
#include "compression/config/validate.h"

namespace shrink::compression::config {

namespace json = boost::json;

namespace {

using TargetKey = std::pair<std::string, std::string>;  // (module name, canonical target)

// DECISIONS row 2 (v1/v2): a module belongs to the last sub-config that selects it; an exclude
// sub-config claims its modules for nobody, which removes them from the sub-configs before it only.
void keep_last_claims(const ConfigList& list, std::vector<std::vector<NamedModule>>& selected) {
  std::set<std::string> claimed;
  for (size_t i = selected.size(); i-- > 0;) {
    std::vector<NamedModule> kept;
    for (const auto& m : selected[i])
      if (claimed.insert(m.name).second) kept.push_back(m);
    selected[i] = list.sub_configs[i].exclude ? std::vector<NamedModule>{} : std::move(kept);
  }
}

// DECISIONS row 1 (v3): the first sub-config that configures a target keeps it.
std::vector<PendingTarget> collect_targets(CompressorKind kind, const ConfigList& list,
                                           const std::vector<std::vector<NamedModule>>& selected,
                                           std::vector<std::string>& warnings) {
  std::vector<PendingTarget> out;
  std::map<TargetKey, size_t> owner;
  for (const auto& sub : list.sub_configs) {
    for (const auto& module : selected[sub.index]) {
      for (auto& p : canonicalize_module(kind, module, sub)) {
        TargetKey key{p.space.module_name, p.space.target_name};
        auto [it, inserted] = owner.emplace(key, sub.index);
        if (!inserted) {
          warnings.push_back(sub.path + ": target '" + key.second + "' of '" + key.first +
                             "' is already configured by " + sub_config_path(it->second) +
                             "; this sub-config's setting for it is ignored (the first one keeps a target)");
          continue;
        }
        out.push_back(std::move(p));
      }
    }
  }
  return out;
}

// align names a mask to follow; it must be one this compressor generates.
void check_align_sources(const std::vector<PendingTarget>& targets, const std::vector<NamedModule>& modules) {
  std::set<TargetKey> configured;
  for (const auto& p : targets) configured.insert({p.space.module_name, p.space.target_name});
  for (const auto& p : targets) {
    auto it = p.settings.values().find("align");
    if (it == p.settings.values().end() || !it->value().is_object()) continue;
    const json::object& align = it->value().get_object();
    const std::string path = p.settings.origin("align", p.config_path);
    const json::value& module_name = align.at("module_name");
    const std::string source = module_name.is_string() ? std::string(module_name.get_string()) : p.space.module_name;
    const NamedModule* source_module = find_module(modules, source);
    if (!source_module)
      throw ConfigError(key_path(path, "module_name"), "the model has no module named '" + source + "'");
    ResolvedTarget target = resolve_target(*source_module, std::string(align.at("target_name").get_string()),
                                           key_path(path, "target_name"));
    if (!configured.count({source, target.name}))
      throw ConfigError(path, "target '" + p.space.target_name + "' of '" + p.space.module_name +
                                  "' follows the mask of target '" + target.name + "' of '" + source +
                                  "', which is not a pruning target: configure it too, or set align to null");
  }
}

// NNI asserts that every target of a global or dependency group has the same sparse_ratio.
void check_group_ratios(const std::vector<PendingTarget>& targets) {
  for (const char* group_key : {"global_group_id", "dependency_group_id"}) {
    std::map<std::string, const PendingTarget*> first_of_group;
    for (const auto& p : targets) {
      const json::object& values = p.settings.values();
      auto id = values.find(group_key);
      if (id == values.end() || id->value().is_null()) continue;
      const std::string key = (id->value().is_string() ? "s:" : "i:") + detail::to_json_text(id->value());
      auto [first, inserted] = first_of_group.emplace(key, &p);
      if (inserted) continue;
      auto ratio_of = [](const PendingTarget& t) {
        auto r = t.settings.values().find("sparse_ratio");
        return r == t.settings.values().end() ? json::value(nullptr) : r->value();
      };
      json::value expected = ratio_of(*first->second), got = ratio_of(p);
      if (expected != got)
        throw ConfigError(p.settings.origin("sparse_ratio", p.settings.origin(group_key, p.config_path)),
                          std::string(group_key) + " " + detail::to_json_text(id->value()) + " has sparse_ratio " +
                              detail::to_json_text(expected) + " for target '" + first->second->space.target_name +
                              "' of '" + first->second->space.module_name + "' (" +
                              sub_config_path(first->second->space.config_index) + ") but " +
                              detail::to_json_text(got) + " for target '" + p.space.target_name + "' of '" +
                              p.space.module_name + "'; a group shares one sparse_ratio");
    }
  }
}

std::string python_hint(std::string_view text) {
  for (const char* python : {"True", "False", "None", "'"})
    if (text.find(python) != std::string_view::npos)
      return " (JSON spells Python's True/False/None as true/false/null, and quotes strings with \")";
  return "";
}

}  // namespace

std::vector<TargetSpace> parse_config_list(const nn::Module& model, const json::value& config, CompressorKind kind,
                                           std::vector<std::string>* warnings) {
  std::vector<std::string> discarded;
  std::vector<std::string>& warn = warnings ? *warnings : discarded;
  const ConfigList list = validate_config_list(config, kind);
  const std::vector<NamedModule> modules = list_modules(model);

  std::vector<std::vector<NamedModule>> selected;
  for (const auto& sub : list.sub_configs) selected.push_back(select_modules(modules, sub, warn));
  if (list.legacy) keep_last_claims(list, selected);

  std::vector<PendingTarget> targets = collect_targets(kind, list, selected, warn);
  if (kind == CompressorKind::Pruning) check_align_sources(targets, modules);
  check_group_ratios(targets);
  apply_fuse_names(list, selected, modules, targets);

  std::vector<TargetSpace> out;
  out.reserve(targets.size());
  for (auto& p : targets) {
    p.space.settings = std::move(p.settings.values());
    p.space.legacy = list.legacy;
    out.push_back(std::move(p.space));
  }
  return out;
}

json::value parse_config_json(std::string_view text) {
  json::parse_options options;
  options.max_depth = 64;  // a config nests 7 deep; the limit keeps hostile input off the stack
  json::stream_parser parser(json::storage_ptr(), options);
  boost::system::error_code ec;
  size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < consumed && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw ConfigError("config", "invalid JSON at line " + std::to_string(line) + ", column " +
                                    std::to_string(column) + ": " + ec.message() + python_hint(text));
  }
  return parser.release();
}

std::vector<TargetSpace> parse_config_list_json(const nn::Module& model, std::string_view json_text,
                                                CompressorKind kind, std::vector<std::string>* warnings) {
  return parse_config_list(model, parse_config_json(json_text), kind, warnings);
}

std::vector<TargetSpace> load_config_list(const nn::Module& model, const std::string& path, CompressorKind kind,
                                          std::vector<std::string>* warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("config", "cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError("config", "cannot read '" + path + "'");
  json::value config;
  try {
    config = parse_config_json(text.str());
  } catch (const ConfigError& e) {
    throw ConfigError(e.path(), "'" + path + "': " + e.problem());
  }
  return parse_config_list(model, config, kind, warnings);
}

}  // namespace shrink::compression::config
