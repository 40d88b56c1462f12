// Fuzzes the dataset readers: gzip (all members, CRC-checked) then IDX, and IDX on the raw bytes.
#include "framework/data/fashion_mnist.h"
#include "fuzz_common.h"

using namespace shrink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = fuzz::bytes_of(data, size);
  fuzz::expect_clean([&] { data::parse_idx(data::gunzip(bytes, "input.gz"), "input"); });
  fuzz::expect_clean([&] { data::parse_idx(bytes, "input", 0x00000803); });
  return 0;
}
