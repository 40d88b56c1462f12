// ConfigError: every rejection of a config list names where the user wrote the offending value,
// as `config[<i>].<key>: <what is wrong>` (nested keys spelled out in full, e.g.
// `config[1].target_settings.weight.granularity`), so a message alone locates the mistake.
#pragma once
#include <string>
#include <utility>

#include "framework/core/error.h"

namespace shrink::compression::config {

class ConfigError : public shrink::Error {
 public:
  ConfigError(std::string path, std::string problem)
      : shrink::Error(path + ": " + problem), path_(std::move(path)), problem_(std::move(problem)) {}
  // The location alone ("config[1].target_settings.weight.granularity").
  const std::string& path() const { return path_; }
  // The message without the location.
  const std::string& problem() const { return problem_; }

 private:
  std::string path_, problem_;
};

// Path of sub-config i ("config[3]") and of a key below a path ("config[3].op_names").
inline std::string sub_config_path(size_t index) { return "config[" + std::to_string(index) + "]"; }
inline std::string key_path(const std::string& parent, const std::string& key) {
  return parent + "." + key;
}
inline std::string element_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

}  // namespace shrink::compression::config
