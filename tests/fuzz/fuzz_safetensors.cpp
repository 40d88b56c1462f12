// Fuzzes the safetensors reader and the three files built on it: weights (and the round trip:
// whatever parses must serialise and parse back to the same tensors and metadata), masks and
// checkpoints (format, checksum).
#include <cstdlib>
#include <cstring>
#include <map>

#include "compression/pruning/mask_io.h"
#include "framework/io/checkpoint.h"
#include "framework/io/safetensors.h"
#include "fuzz_common.h"

using namespace shrink;

namespace {
bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = fuzz::bytes_of(data, size);
  fuzz::expect_clean([&] {
    io::SafetensorsFile file = io::parse_safetensors(bytes, "input");
    std::string again;
    try {
      again = io::serialize_safetensors(file.tensors, file.metadata);
    } catch (const Error&) {
      return;  // a name the writer refuses (it is stricter than the format)
    }
    io::SafetensorsFile back = io::parse_safetensors(again, "round trip");
    std::map<std::string, Tensor> a(file.tensors.begin(), file.tensors.end()), b(back.tensors.begin(), back.tensors.end());
    if (a.size() != b.size() || back.metadata != file.metadata) std::abort();
    for (auto& [name, t] : a)
      if (!b.count(name) || !same_bytes(t, b.at(name))) std::abort();
  });
  fuzz::expect_clean([&] { compression::parse_masks(bytes, "input"); });
  fuzz::expect_clean([&] { io::parse_checkpoint(bytes, "input"); });
  return 0;
}
