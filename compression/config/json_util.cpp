// Helpers behind json_util.h.
#include "compression/config/json_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "compression/config/config_error.h"

namespace shrink::compression::config::detail {

namespace json = boost::json;

std::string describe(const json::value& v) {
  constexpr size_t kMaxExcerpt = 60;
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return v.get_bool() ? "true" : "false";
    case json::kind::int64: return std::to_string(v.get_int64()) + " (an integer)";
    case json::kind::uint64: return std::to_string(v.get_uint64()) + " (an integer)";
    case json::kind::double_:
      return std::isfinite(v.get_double()) ? to_json_text(v) : "a number out of range";
    case json::kind::string: {
      std::string s(v.get_string());
      if (s.size() > kMaxExcerpt) s = s.substr(0, kMaxExcerpt) + "...";
      return json::serialize(json::string(s));
    }
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "?";
}

std::optional<int64_t> as_integer(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(v.get_uint64());
  return std::nullopt;
}

std::vector<std::string> string_list(const json::value& v, const std::string& path) {
  const json::array* items = v.if_array();
  if (!items) throw ConfigError(path, "expected a list of strings, got " + describe(v));
  std::vector<std::string> out;
  out.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const json::string* s = (*items)[i].if_string();
    if (!s) throw ConfigError(element_path(path, i), "expected a string, got " + describe((*items)[i]));
    out.emplace_back(*s);
  }
  return out;
}

namespace {
std::string double_text(double d) {
  if (!std::isfinite(d)) return "null";  // JSON has no NaN/inf; canonical values are finite
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}
}  // namespace

std::string to_json_text(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: return double_text(v.get_double());
    case json::kind::array: {
      std::string s = "[";
      for (size_t i = 0; i < v.get_array().size(); ++i)
        s += (i ? ", " : "") + to_json_text(v.get_array()[i]);
      return s + "]";
    }
    case json::kind::object: {
      std::string s = "{";
      bool first = true;
      for (const auto& kv : v.get_object()) {
        s += (first ? "" : ", ") + json::serialize(json::string(kv.key())) + ": " +
             to_json_text(kv.value());
        first = false;
      }
      return s + "}";
    }
    default: return json::serialize(v);
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  constexpr size_t kLongest = 64;  // beyond this a "typo" is not plausible, and the cost is not
  std::string best;
  if (word.size() > kLongest) return best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace shrink::compression::config::detail
