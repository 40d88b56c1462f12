// Fuzzes the calibration reader: the first two bytes give the length of the JSON sidecar that
// follows them, the rest is the safetensors file.
#include "compression/quantization/calibration_io.h"
#include "fuzz_common.h"

using namespace shrink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t json_len = std::min<size_t>(static_cast<size_t>(data[0]) | static_cast<size_t>(data[1]) << 8, size - 2);
  const std::string sidecar = fuzz::bytes_of(data + 2, json_len);
  const std::string tensors = fuzz::bytes_of(data + 2 + json_len, size - 2 - json_len);
  fuzz::expect_clean([&] { compression::parse_calibration(tensors, "calib.safetensors", sidecar, "calib.json"); });
  return 0;
}
