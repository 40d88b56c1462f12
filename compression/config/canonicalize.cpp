// Per-module canonicalization (canonicalize.h).
#include "compression/config/canonicalize.h"

#include <map>
#include <set>

#include "compression/config/config_error.h"
#include "compression/config/json_util.h"

namespace shrink::compression::config {

namespace json = boost::json;

namespace {

// The module type's templates, keyed by canonical target.
struct ModuleTemplates {
  std::vector<ResolvedTarget> default_targets;
  std::map<std::string, const json::object*> by_target;
  const json::object* every_input = nullptr;   // a bare "_input_" template
  const json::object* every_output = nullptr;  // a bare "_output_" template
};

ModuleTemplates module_templates(const json::object& templates, const NamedModule& module, const SubConfig& sub,
                                 CompressorKind kind) {
  ModuleTemplates out;
  const std::string path = sub.path + " (default " + to_string(kind) + " settings of " + module.module->type_name() + ")";
  std::set<std::string> seen;
  for (const auto& kv : templates) {
    std::string written(kv.key());
    ResolvedTarget target = resolve_target(module, written, path);
    const json::object* settings = &kv.value().get_object();  // the registry holds checked objects
    if (written == "_input_") out.every_input = settings;
    else if (written == "_output_") out.every_output = settings;
    else out.by_target[target.name] = settings;
    if (seen.insert(target.name).second) out.default_targets.push_back(target);
  }
  return out;
}

// target_settings entries that apply to this module, keyed by canonical target.
struct ModuleEntries {
  std::map<std::string, const TargetSettingsEntry*> by_target;
  const TargetSettingsEntry* every_input = nullptr;
  const TargetSettingsEntry* every_output = nullptr;
};

ModuleEntries module_entries(const SubConfig& sub, const NamedModule& module) {
  ModuleEntries out;
  for (const auto& entry : sub.target_settings) {
    if (entry.target == "_input_") {
      out.every_input = &entry;
      continue;
    }
    if (entry.target == "_output_") {
      out.every_output = &entry;
      continue;
    }
    std::string canonical;
    try {
      canonical = resolve_target(module, entry.target, entry.path).name;
    } catch (const ConfigError&) {
      continue;  // a target this module lacks: only target_names can make that a mistake
    }
    auto [it, inserted] = out.by_target.emplace(canonical, &entry);
    if (!inserted)
      throw ConfigError(entry.path, "configures the same target of '" + module.name + "' (" + canonical + ") as " +
                                        it->second->path);
  }
  return out;
}

std::vector<ResolvedTarget> chosen_targets(const SubConfig& sub, const NamedModule& module,
                                           const ModuleTemplates& templates) {
  if (!sub.has_target_names) return templates.default_targets;
  std::vector<ResolvedTarget> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < sub.target_names.size(); ++i) {
    ResolvedTarget target = resolve_target(module, sub.target_names[i], element_path(sub.target_names_path, i));
    if (seen.insert(target.name).second) out.push_back(target);
  }
  return out;
}

void apply_entry(const TargetSettingsEntry* entry, TargetSettings& settings) {
  if (!entry) return;
  for (const auto& s : entry->settings) settings.set(s.key, s.value, s.path);
}

const Tensor* target_tensor(const nn::Module& module, const ResolvedTarget& target) {
  const auto& list = target.kind == TargetKind::Buffer ? module.local_buffers() : module.local_parameters();
  for (const auto& [name, t] : list)
    if (name == target.name) return &t;
  return nullptr;
}

// Granularity must fit the target: channel granularities address parameter dims 0 and 1, a block
// list cannot have more dims than the parameter.
void check_granularity(const PendingTarget& p, const NamedModule& module, const ResolvedTarget& target) {
  auto it = p.settings.values().find("granularity");
  if (it == p.settings.values().end()) return;
  const json::value& g = it->value();
  const std::string path = p.settings.origin("granularity", p.config_path);
  const std::string who = "target '" + target.name + "' of '" + module.name + "'";
  const bool is_activation = target.kind == TargetKind::Input || target.kind == TargetKind::Output;
  if (is_activation && g.is_string() && (g.get_string() == "in_channel" || g.get_string() == "out_channel"))
    throw ConfigError(path, "'" + std::string(g.get_string()) + "' applies to parameters; use 'per_channel' for " +
                                (target.kind == TargetKind::Input ? "input " : "output ") + who);
  if (is_activation) return;
  const Tensor* tensor = target_tensor(*module.module, target);
  if (!tensor || !tensor->defined()) return;
  size_t needed = 0;
  if (g.is_string() && g.get_string() == "out_channel") needed = 1;
  if (g.is_string() && g.get_string() == "in_channel") needed = 2;
  if (g.is_array()) needed = g.get_array().size();
  const size_t rank = static_cast<size_t>(tensor->dim());
  if (needed > rank)
    throw ConfigError(path, "granularity " + detail::to_json_text(g) + " needs " + std::to_string(needed) +
                                " dimensions, but " + who + " has " + std::to_string(rank));
}

}  // namespace

std::vector<PendingTarget> canonicalize_module(CompressorKind kind, const NamedModule& module, const SubConfig& sub) {
  const std::string type = module.module->type_name();
  std::optional<json::object> registered = find_default_settings(kind, type);
  if (!registered)
    throw ConfigError(sub.path, "selects '" + module.name + "': " + registration_hint(kind, type));
  const ModuleTemplates templates = module_templates(*registered, module, sub, kind);
  const ModuleEntries entries = module_entries(sub, module);

  std::vector<PendingTarget> out;
  for (const ResolvedTarget& target : chosen_targets(sub, module, templates)) {
    if (!target.present) continue;
    const bool is_input = target.kind == TargetKind::Input, is_output = target.kind == TargetKind::Output;
    const json::object* base = &generic_target_settings(kind);
    if (auto it = templates.by_target.find(target.name); it != templates.by_target.end()) base = it->second;
    else if (is_input && templates.every_input) base = templates.every_input;
    else if (is_output && templates.every_output) base = templates.every_output;

    PendingTarget p{TargetSpace{module.name, type, target.name, target.kind, {}, sub.index, {}},
                    TargetSettings(*base), sub.path};
    for (const auto& s : sub.shorthand)
      if (base->contains(s.key)) p.settings.set(s.key, s.value, s.path);
    for (const auto& s : sub.every_target) p.settings.set(s.key, s.value, s.path);
    if (is_input) apply_entry(entries.every_input, p.settings);
    if (is_output) apply_entry(entries.every_output, p.settings);
    if (auto it = entries.by_target.find(target.name); it != entries.by_target.end()) apply_entry(it->second, p.settings);

    fill_effective_defaults(kind, module.name, p.settings.values());
    check_setting_combination(p.settings, sub.path);
    check_granularity(p, module, target);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace shrink::compression::config
