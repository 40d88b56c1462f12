// fuse_names (quantization): conv/linear + batch norm [+ ReLU] fused into one wrapper, checked up
// front rather than at the first forward as NNI does (nni-semantics.md §2.7).
#pragma once
#include <vector>

#include "compression/config/canonicalize.h"
#include "compression/config/select.h"
#include "compression/config/sub_config.h"

namespace shrink::compression::config {

// Checks every fuse_names group of `list`: its modules exist, its first module is selected by the
// same sub-config, the type sequence is one the fuser supports, no module is fused twice, the
// fused-away modules are not targets themselves, a folded batch norm has the leader's `weight` and
// a fused ReLU the leader's `_output_0` among the targets. Records each group on its leader's
// targets (TargetSpace::fused_modules).
void apply_fuse_names(const ConfigList& list, const std::vector<std::vector<NamedModule>>& selected,
                      const std::vector<NamedModule>& modules, std::vector<PendingTarget>& targets);

}  // namespace shrink::compression::config
