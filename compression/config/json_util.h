// Small helpers for reading untrusted JSON without exceptions other than ConfigError: kind tests
// that keep booleans apart from integers, and value descriptions for error messages that never
// print more than a short excerpt (a config can hold arbitrarily large or deep values).
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shrink::compression::config::detail {

// "1 (an integer)", "0.5", "\"abc\"", "true", "null", "an array", "an object".
std::string describe(const boost::json::value& v);

// JSON integers (int64 or uint64 kind; never booleans) that fit in int64.
std::optional<int64_t> as_integer(const boost::json::value& v);

// A JSON array whose elements are all strings; ConfigError at `path` (or `path[i]`) otherwise.
std::vector<std::string> string_list(const boost::json::value& v, const std::string& path);

// Compact JSON text, floats always written with a point or exponent (so 1.0 stays a float when
// read back) and in the shortest form that reads back exactly. For canonical values, which are
// shallow; not meant for arbitrary input.
std::string to_json_text(const boost::json::value& v);

// Edit distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `word` if it is close enough to be a likely typo, else "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace shrink::compression::config::detail
