// Reading and writing the safetensors format (https://github.com/huggingface/safetensors), the
// interchange format for model weights shared with PyTorch / Hugging Face tooling.
//
// Layout: u64 little-endian header length N, N bytes of JSON header (may end in spaces), then
// the data buffer. The header maps each tensor name to {"dtype", "shape", "data_offsets"}
// (offsets relative to the data buffer) plus an optional "__metadata__" string map.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::io {

struct SafetensorsFile {
  // In file order: ascending data_offsets (ties, i.e. empty tensors, by name). Files written by
  // save_safetensors or the Python library therefore come back in sorted name order.
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
};

// Reads dtypes F32, F16 (widened to f32), I64, I32, U8, I8 and BOOL (as u8). Any malformed or
// inconsistent file throws shrink::Error naming `path` (or `source_name`), the tensor and the
// offending offsets; sizes are validated before anything is allocated.
SafetensorsFile load_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& source_name);
std::map<std::string, Tensor> load_tensors(const std::string& path);

// Writes F32, I64, I32, U8 and I8 tensors in sorted name order with the header space-padded so
// the data buffer starts 8-byte aligned, as the Python library does. Names must be unique and
// non-empty; "__metadata__" is reserved. Non-CPU tensors are copied to the CPU first. The file
// is replaced atomically (see write_file_atomic).
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Lets `save_safetensors(path, {{"a", t}})` pick an overload (vector and map both accept it).
inline void save_safetensors(const std::string& path,
                             std::initializer_list<std::pair<std::string, Tensor>> tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  save_safetensors(path, std::vector<std::pair<std::string, Tensor>>(tensors), metadata);
}

// Serialises to bytes instead of a file (same layout as save_safetensors).
std::string serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// IEEE 754 binary16 -> binary32, exact for every input (subnormals, infinities, NaN payloads).
float half_to_float(uint16_t h);

}  // namespace shrink::io
