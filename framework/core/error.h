// shrink::Error and the check macro every layer uses to reject bad input with context.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace shrink {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename T>
void put(std::ostringstream& os, const T& v) {
  os << v;
}
// Shapes and index lists print as [a, b, c].
template <typename T>
void put(std::ostringstream& os, const std::vector<T>& v) {
  os << '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) os << ", ";
    os << v[i];
  }
  os << ']';
}
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  put(os, v);
  append(os, rest...);
}
}  // namespace detail

// Builds a message from any streamable pieces: SHRINK_FAIL("conv2d: input ", shape, " ...").
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  throw Error(os.str());
}

}  // namespace shrink

#define SHRINK_CHECK(cond, ...)        \
  do {                                 \
    if (!(cond)) ::shrink::fail(__VA_ARGS__); \
  } while (0)
