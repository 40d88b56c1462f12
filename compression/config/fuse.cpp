// fuse_names checks (fuse.h).
#include "compression/config/fuse.h"

#include <algorithm>
#include <map>

#include "compression/config/config_error.h"

namespace shrink::compression::config {

namespace {

// NNI's _DEFAULT_OP_LIST_TO_FUSER_METHOD.
const std::vector<std::vector<std::string>> kFusableTypes = {
    {"Conv1d", "BatchNorm1d"}, {"Conv1d", "BatchNorm1d", "ReLU"}, {"Conv1d", "ReLU"},
    {"Conv2d", "BatchNorm2d"}, {"Conv2d", "BatchNorm2d", "ReLU"}, {"Conv2d", "ReLU"},
    {"Conv3d", "BatchNorm3d"}, {"Conv3d", "BatchNorm3d", "ReLU"}, {"Conv3d", "ReLU"},
    {"Linear", "BatchNorm1d"}, {"Linear", "BatchNorm1d", "ReLU"}, {"Linear", "ReLU"},
    {"BatchNorm1d", "ReLU"},   {"BatchNorm2d", "ReLU"},           {"BatchNorm3d", "ReLU"},
};

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return "(" + s + ")";
}

std::string fusable_text() {
  std::string s;
  for (const auto& types : kFusableTypes) s += (s.empty() ? "" : " ") + joined(types);
  return s;
}

bool is_batch_norm(const std::string& type) { return type.rfind("BatchNorm", 0) == 0; }

bool has_target(const std::vector<PendingTarget>& targets, const std::string& module, const std::string& target) {
  return std::any_of(targets.begin(), targets.end(), [&](const PendingTarget& p) {
    return p.space.module_name == module && p.space.target_name == target;
  });
}

void check_group(const FuseGroup& group, const SubConfig& sub, const std::vector<NamedModule>& selected,
                 const std::vector<NamedModule>& modules, const std::vector<PendingTarget>& targets,
                 std::map<std::string, std::string>& fused_by) {
  std::vector<std::string> types;
  for (size_t k = 0; k < group.names.size(); ++k) {
    const std::string& name = group.names[k];
    const NamedModule* m = find_module(modules, name);
    if (!m) throw ConfigError(element_path(group.path, k), "the model has no module named '" + name + "'");
    if (auto it = fused_by.find(name); it != fused_by.end())
      throw ConfigError(element_path(group.path, k), "'" + name + "' is already fused by " + it->second);
    types.push_back(m->module->type_name());
  }
  const std::string& leader = group.names.front();
  if (std::none_of(selected.begin(), selected.end(), [&](const NamedModule& m) { return m.name == leader; }))
    throw ConfigError(element_path(group.path, 0), "'" + leader + "' is not selected by " + sub.path +
                                                       "; a fusion starts with a module its sub-config selects");
  if (std::find(kFusableTypes.begin(), kFusableTypes.end(), types) == kFusableTypes.end())
    throw ConfigError(group.path, "cannot fuse " + joined(types) + "; fusable types: " + fusable_text());
  for (size_t k = 1; k < group.names.size(); ++k) {
    if (is_batch_norm(types[k]) && !is_batch_norm(types[0]) && !has_target(targets, leader, "weight"))
      throw ConfigError(group.path, "folding '" + group.names[k] + "' into '" + leader +
                                        "' changes its weight, so 'weight' must be one of its targets");
    if (types[k] == "ReLU" && !has_target(targets, leader, "_output_0"))
      throw ConfigError(group.path, "the fused ReLU '" + group.names[k] + "' runs before '" + leader +
                                        "''s output is quantized, so '_output_' must be one of its targets");
  }
  for (const auto& name : group.names) fused_by[name] = group.path;
}

}  // namespace

void apply_fuse_names(const ConfigList& list, const std::vector<std::vector<NamedModule>>& selected,
                      const std::vector<NamedModule>& modules, std::vector<PendingTarget>& targets) {
  std::map<std::string, std::string> fused_by;  // module name -> the group that fuses it
  for (const auto& sub : list.sub_configs) {
    for (const auto& group : sub.fuse_groups) {
      check_group(group, sub, selected[sub.index], modules, targets, fused_by);
      for (auto& p : targets) {
        if (p.space.module_name == group.names.front()) p.space.fused_modules = group.names;
        for (size_t k = 1; k < group.names.size(); ++k)
          if (p.space.module_name == group.names[k])
            throw ConfigError(sub_config_path(p.space.config_index),
                              "module '" + group.names[k] + "' is fused into '" + group.names.front() + "' by " +
                                  group.path + ", so it cannot be quantized itself; exclude it here");
      }
    }
  }
}

}  // namespace shrink::compression::config
