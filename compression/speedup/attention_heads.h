// Attention heads in pruning speedup. A MultiheadAttention loses whole heads, never single
// features: its reshape to [B, H, L, head_dim] needs every head equally wide. A head goes exactly
// when what it adds to the output is a constant:
//   - every value row of the head is masked: its values are one constant vector (the bias), and a
//     row of attention weights sums to one, so its context is that constant, which speedup folds
//     into out_proj's bias;
//   - or every out_proj column of the head is masked: it adds nothing.
// Its query and key rows go with it. Masked rows of a kept head stay (zero weights). (NNI's head
// replacer drops a head as soon as, feature by feature, any of q, k, v, out is masked; a head whose
// queries alone are masked then goes, which changes the output.)
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compression/pruning/pruner.h"

namespace shrink::compression {

struct AttentionHeads {
  int64_t head_dim = 0;
  std::vector<uint8_t> keep;          // per head
  std::vector<std::string> notes;     // masked rows or columns that stay, and why

  int64_t kept() const;
  // Per feature of the projections' inner side: keep[h] for each of the head's head_dim features.
  std::vector<uint8_t> features() const;
};

// Every MultiheadAttention of `model`, by module name.
std::map<std::string, AttentionHeads> plan_attention_heads(nn::Module& model, const Masks& masks);

}  // namespace shrink::compression
