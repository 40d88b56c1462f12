// What every fuzz target shares: an input counts as handled when the reader returns or throws
// shrink::Error (the documented way to reject bad input, with a message naming the fault). Any
// other exception escapes to libFuzzer, which reports it as a crash: a reader must never fail
// with a bare std::out_of_range, boost::system::system_error or bad_alloc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "framework/core/error.h"

namespace shrink::fuzz {

inline std::string bytes_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

template <typename F>
void expect_clean(F&& read) {
  try {
    read();
  } catch (const shrink::Error&) {
  }
}

}  // namespace shrink::fuzz
