// Names of compressor and target kinds, and target name syntax.
#include "compression/config/target_space.h"

#include <cctype>

#include "framework/core/error.h"

namespace shrink::compression::config {

namespace {
const std::string kInputPrefix = "_input_";
const std::string kOutputPrefix = "_output_";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}
bool is_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

const char* to_string(CompressorKind kind) {
  switch (kind) {
    case CompressorKind::Pruning: return "pruning";
    case CompressorKind::Quantization: return "quantization";
    case CompressorKind::Distillation: return "distillation";
  }
  return "?";
}

std::optional<CompressorKind> parse_compressor_kind(const std::string& name) {
  for (auto kind : {CompressorKind::Pruning, CompressorKind::Quantization, CompressorKind::Distillation})
    if (name == to_string(kind)) return kind;
  return std::nullopt;
}

const char* to_string(TargetKind kind) {
  switch (kind) {
    case TargetKind::Parameter: return "parameter";
    case TargetKind::Buffer: return "buffer";
    case TargetKind::Input: return "input";
    case TargetKind::Output: return "output";
  }
  return "?";
}

bool is_input_target_name(const std::string& name) { return starts_with(name, kInputPrefix); }
bool is_output_target_name(const std::string& name) { return starts_with(name, kOutputPrefix); }

std::string target_name_problem(const std::string& name) {
  if (is_input_target_name(name)) {
    std::string suffix = name.substr(kInputPrefix.size());
    if (suffix.empty() || is_digits(suffix) || is_identifier(suffix)) return "";
    return "an input target is '_input_', '_input_<position>' or '_input_<argument name>'";
  }
  if (is_output_target_name(name)) return "";  // any suffix can be a dict key
  if (is_identifier(name)) return "";
  return "not a target name: expected a parameter or buffer name, '_input_...' or '_output_...'";
}

size_t TargetSpace::input_index() const {
  SHRINK_CHECK(target_kind == TargetKind::Input, "TargetSpace::input_index: '", target_name,
               "' of '", module_name, "' is not an input target");
  return std::stoul(target_name.substr(kInputPrefix.size()));
}

bool operator==(const TargetSpace& a, const TargetSpace& b) {
  return a.module_name == b.module_name && a.module_type == b.module_type && a.target_name == b.target_name &&
         a.target_kind == b.target_kind && a.settings == b.settings && a.config_index == b.config_index && a.legacy == b.legacy &&
         a.fused_modules == b.fused_modules;
}

}  // namespace shrink::compression::config
