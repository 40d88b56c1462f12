// Rendering of the explain table (explain.h).
#include "compression/config/explain.h"

#include <algorithm>
#include <tuple>

#include "compression/config/json_util.h"

namespace shrink::compression::config {

namespace json = boost::json;

std::vector<TargetSpace> sorted_for_explain(std::vector<TargetSpace> targets) {
  std::stable_sort(targets.begin(), targets.end(), [](const TargetSpace& a, const TargetSpace& b) {
    return std::tie(a.module_name, a.target_name) < std::tie(b.module_name, b.target_name);
  });
  return targets;
}

json::object explain_json(const std::vector<TargetSpace>& targets, const std::vector<std::string>& warnings) {
  json::array rows;
  for (const auto& t : sorted_for_explain(targets)) {
    rows.push_back(json::object{{"module", t.module_name},
                                {"type", t.module_type},
                                {"target", t.target_name},
                                {"config_index", static_cast<int64_t>(t.config_index)},
                                {"settings", t.settings}});
  }
  return {{"targets", std::move(rows)}, {"warnings", json::array(warnings.begin(), warnings.end())}};
}

std::string explain_json_text(const std::vector<TargetSpace>& targets, const std::vector<std::string>& warnings) {
  return detail::to_json_text(explain_json(targets, warnings));
}

std::string explain_table(const std::vector<TargetSpace>& targets, const std::vector<std::string>& warnings) {
  const std::vector<std::string> header = {"module", "type", "target", "kind", "config", "settings"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : sorted_for_explain(targets)) {
    std::string settings = detail::to_json_text(t.settings);
    if (!t.fused_modules.empty())
      settings += "  fused with " + detail::to_json_text(json::array(t.fused_modules.begin() + 1, t.fused_modules.end()));
    rows.push_back({t.module_name.empty() ? "(model)" : t.module_name, t.module_type, t.target_name,
                    to_string(t.target_kind), std::to_string(t.config_index), settings});
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cells.size(); ++c)
      s += c + 1 == cells.size() ? cells[c] : cells[c] + std::string(width[c] - cells[c].size() + 2, ' ');
    return s + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  out += std::to_string(rows.size()) + " target" + (rows.size() == 1 ? "" : "s") + "\n";
  if (!warnings.empty()) {
    out += "warnings:\n";
    for (const auto& w : warnings) out += "  " + w + "\n";
  }
  return out;
}

}  // namespace shrink::compression::config
