#include "compression/pruning/mask_io.h"

#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"

namespace shrink::compression {

namespace {

void check_mask(const std::string& path, const std::string& key, const Tensor& m) {
  SHRINK_CHECK(key.find('.') != std::string::npos && key.front() != '.' && key.back() != '.', path,
               ": mask key '", key, "' is not '<module>.<target>'");
  SHRINK_CHECK(m.defined() && m.dtype() == DType::F32, path, ": mask '", key, "' must be F32, got ",
               m.defined() ? m.describe() : std::string("an undefined tensor"));
  for (float v : m.to_vector())
    SHRINK_CHECK(v == 0.f || v == 1.f, path, ": mask '", key, "' holds ", v, "; masks are 0/1");
}

}  // namespace

void save_masks(const std::string& path, const Masks& masks) {
  std::map<std::string, Tensor> out;
  for (const auto& [key, m] : masks) {
    check_mask(path, key, m);
    out[key] = m.contiguous_copy();
  }
  io::save_safetensors(path, out);
}

Masks load_masks(const std::string& path) { return parse_masks(io::read_file(path), path); }

Masks parse_masks(const std::string& bytes, const std::string& name) {
  Masks out;
  for (auto& [key, m] : io::parse_safetensors(bytes, name).tensors) {
    check_mask(name, key, m);
    out[key] = m;
  }
  return out;
}

}  // namespace shrink::compression
