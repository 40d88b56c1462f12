// Masks on disk: one safetensors file, a tensor per target keyed "<module>.<target>" (the keys
// of Pruner::get_masks), F32 0/1 in the target's full shape (activation masks in the
// broadcastable shape they were generated in). The file is replaced atomically, so a crash
// never leaves a half-written mask file; it loads in Python with safetensors.torch.load_file.
#pragma once
#include <string>

#include "compression/pruning/pruner.h"

namespace shrink::compression {

// Every mask must hold only 0 and 1 (an error names the first key that does not).
void save_masks(const std::string& path, const Masks& masks);
// The same checks on load: F32, values 0/1, keys "<module>.<target>".
Masks load_masks(const std::string& path);
// The same from the file's bytes; `name` appears in every error.
Masks parse_masks(const std::string& bytes, const std::string& name);

}  // namespace shrink::compression
