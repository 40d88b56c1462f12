// Module selection and target resolution (select.h).
#include "compression/config/select.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "compression/config/config_error.h"

namespace shrink::compression::config {

namespace {

const std::string kInputPrefix = "_input_";
const std::string kOutputPrefix = "_output_";

void collect(const nn::Module& module, const std::string& name, std::vector<NamedModule>& out) {
  out.push_back({name, &module});
  for (const auto& [child_name, child] : module.children())
    collect(*child, name.empty() ? child_name : name + "." + child_name, out);
}

// Python's re.match: the pattern must match at the start of the name, not necessarily all of it.
bool matches_at_start(const NamePattern& pattern, const std::string& name) {
  try {
    boost::smatch match;
    return boost::regex_search(name, match, pattern.regex, boost::match_continuous | boost::match_not_dot_newline);
  } catch (const std::exception& e) {  // Boost.Regex gives up on pathological backtracking
    throw ConfigError(pattern.path, "matching module name '" + name + "' failed: " + e.what());
  }
}

bool any_match(const std::vector<NamePattern>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const NamePattern& p) { return matches_at_start(p, name); });
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

bool is_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Whether `name` is a declared parameter or buffer of `module`, and whether it holds a tensor.
std::optional<ResolvedTarget> find_tensor(const nn::Module& module, const std::string& name) {
  for (const auto& [n, t] : module.local_parameters())
    if (n == name) return ResolvedTarget{name, TargetKind::Parameter, t.defined()};
  for (const auto& [n, t] : module.local_buffers())
    if (n == name) return ResolvedTarget{name, TargetKind::Buffer, t.defined()};
  return std::nullopt;
}

[[noreturn]] void no_such_target(const NamedModule& module, const std::string& written, const std::string& path,
                                 const std::string& why) {
  throw ConfigError(path, "module '" + module.name + "' (" + module.module->type_name() + ") has no target '" +
                              written + "'" + why + "; its targets: " + describe_targets(*module.module));
}

}  // namespace

std::vector<NamedModule> list_modules(const nn::Module& model) {
  std::vector<NamedModule> out;
  collect(model, "", out);
  return out;
}

const NamedModule* find_module(const std::vector<NamedModule>& modules, const std::string& name) {
  for (const auto& m : modules)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<NamedModule> select_modules(const std::vector<NamedModule>& modules, const SubConfig& sub,
                                        std::vector<std::string>& warnings) {
  std::set<std::string> reported;
  for (const auto& name : sub.op_names)
    if (!find_module(modules, name) && reported.insert(name).second)
      warnings.push_back(sub.op_names_path + ": the model has no module named '" + name + "'; ignored");

  const bool by_name = !sub.op_names.empty() || !sub.op_names_re.empty() || !sub.partial_names.empty();
  std::vector<NamedModule> out;
  for (const auto& m : modules) {
    const std::string type = m.module->type_name();
    bool named = contains(sub.op_names, m.name) || any_match(sub.op_names_re, m.name) ||
                 std::any_of(sub.partial_names.begin(), sub.partial_names.end(),
                             [&](const std::string& part) { return m.name.find(part) != std::string::npos; });
    bool selected = named;
    if (!sub.op_types.empty()) selected = contains(sub.op_types, type) && (named || !by_name);
    if (!selected) continue;
    if (contains(sub.exclude_op_names, m.name) || any_match(sub.exclude_op_names_re, m.name) ||
        contains(sub.exclude_op_types, type))
      continue;
    out.push_back(m);
  }
  return out;
}

ResolvedTarget resolve_target(const NamedModule& module, const std::string& written, const std::string& path) {
  if (is_input_target_name(written)) {
    const std::vector<std::string> args = module.module->arg_names();
    std::string suffix = written.substr(kInputPrefix.size());
    size_t index;
    if (suffix.empty()) {
      index = 0;
    } else if (is_digits(suffix)) {
      index = suffix.size() > 6 ? args.size() : std::stoul(suffix);
    } else {
      auto it = std::find(args.begin(), args.end(), suffix);
      if (it == args.end()) no_such_target(module, written, path, " (no argument of that name)");
      index = static_cast<size_t>(it - args.begin());
    }
    if (index >= args.size())
      no_such_target(module, written, path, " (forward takes " + std::to_string(args.size()) + " argument" +
                                                (args.size() == 1 ? "" : "s") + ")");
    return {kInputPrefix + std::to_string(index), TargetKind::Input, true};
  }
  if (is_output_target_name(written)) {
    std::string suffix = written.substr(kOutputPrefix.size());
    return {kOutputPrefix + (suffix.empty() ? "0" : suffix), TargetKind::Output, true};
  }
  if (auto tensor = find_tensor(*module.module, written)) return *tensor;
  no_such_target(module, written, path, "");
}

std::string describe_targets(const nn::Module& module) {
  std::string s;
  auto add = [&](const std::string& item) { s += (s.empty() ? "" : ", ") + item; };
  for (const auto& [name, t] : module.local_parameters()) add(name + (t.defined() ? "" : " (absent)"));
  for (const auto& [name, t] : module.local_buffers()) add(name + (t.defined() ? " (buffer)" : " (absent buffer)"));
  std::vector<std::string> args = module.arg_names();
  for (size_t i = 0; i < args.size(); ++i) add(kInputPrefix + std::to_string(i) + " (" + kInputPrefix + args[i] + ")");
  add(kOutputPrefix + "<index|key>");
  return s;
}

}  // namespace shrink::compression::config
