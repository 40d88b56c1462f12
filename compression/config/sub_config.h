// SubConfig: one checked sub-config of a config list, in one form for both formats — v3 keys as
// written, legacy keys already translated (legacy.h) — each setting with the path it was written
// at, so that later checks against the model still report `config[i].<key>`.
#pragma once
#include <boost/json.hpp>
#include <boost/regex.hpp>
#include <string>
#include <vector>

namespace shrink::compression::config {

// An op_names_re / exclude_op_names_re entry.
struct NamePattern {
  std::string text;  // as written (Python's `re` syntax)
  std::string path;  // "config[0].op_names_re[1]"
  boost::regex regex;
};

// A setting as the config wrote it (value already canonical) and where.
struct WrittenSetting {
  std::string key;
  boost::json::value value;
  std::string path;
};

// A target_settings entry.
struct TargetSettingsEntry {
  std::string target;  // as written: "weight", "_input_", "_input_x", "_output_0"
  std::string path;    // "config[0].target_settings.weight"
  std::vector<WrittenSetting> settings;
};

// A fuse_names group: the modules fused into names.front().
struct FuseGroup {
  std::vector<std::string> names;
  std::string path;  // "config[1].fuse_names[0]"
};

struct SubConfig {
  size_t index = 0;
  std::string path;  // "config[<index>]"

  // Selection (NNI's select_modules_by_config). Empty lists behave as absent, as in NNI.
  std::vector<std::string> op_types;  // 'default' already expanded
  std::vector<std::string> op_names;
  std::string op_names_path;
  std::vector<NamePattern> op_names_re;
  std::vector<std::string> partial_names;  // legacy op_partial_names: substrings of names
  std::vector<std::string> exclude_op_names, exclude_op_types;
  std::vector<NamePattern> exclude_op_names_re;

  // Targets. Without target_names, the module type's default targets.
  bool has_target_names = false;
  std::vector<std::string> target_names;  // as written
  std::string target_names_path;
  std::vector<TargetSettingsEntry> target_settings;
  // Top-level settings: each reaches the targets whose template has its key.
  std::vector<WrittenSetting> shorthand;
  // Settings for every selected target, template or not (legacy translation only, e.g.
  // quant_start_step, which no template has).
  std::vector<WrittenSetting> every_target;

  std::vector<FuseGroup> fuse_groups;  // quantization only
  bool exclude = false;                // legacy `exclude: true`: names modules to leave alone
};

struct ConfigList {
  std::vector<SubConfig> sub_configs;
  // Any sub-config holds a legacy key: v1/v2 precedence applies (DECISIONS row 2).
  bool legacy = false;
};

}  // namespace shrink::compression::config
