#include "compression/speedup/attention_heads.h"

#include <algorithm>

#include "framework/nn/layers.h"

namespace shrink::compression {

namespace {

// For a [rows, cols] mask: whether each row (by_row) or each column holds an unmasked element.
// No mask: everything is kept.
std::vector<uint8_t> any_unmasked(const Masks& masks, const std::string& key, int64_t rows, int64_t cols, bool by_row) {
  std::vector<uint8_t> keep(static_cast<size_t>(by_row ? rows : cols), 0);
  auto it = masks.find(key);
  if (it == masks.end()) return std::vector<uint8_t>(keep.size(), 1);
  const std::vector<float> m = expand(it->second.to(Device::CPU), {rows, cols}).contiguous_copy().to_vector();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (m[static_cast<size_t>(r * cols + c)] != 0.f) keep[static_cast<size_t>(by_row ? r : c)] = 1;
  return keep;
}

}  // namespace

int64_t AttentionHeads::kept() const { return std::count(keep.begin(), keep.end(), 1); }

std::vector<uint8_t> AttentionHeads::features() const {
  std::vector<uint8_t> f;
  for (uint8_t k : keep) f.insert(f.end(), static_cast<size_t>(head_dim), k);
  return f;
}

std::map<std::string, AttentionHeads> plan_attention_heads(nn::Module& model, const Masks& masks) {
  std::map<std::string, AttentionHeads> out;
  for (auto& [name, m] : model.named_modules()) {
    auto* mha = dynamic_cast<nn::MultiheadAttention*>(m.get());
    if (!mha) continue;
    AttentionHeads h;
    h.head_dim = mha->head_dim;
    const int64_t inner = mha->num_heads * mha->head_dim;
    const std::string p = name.empty() ? "" : name + ".";
    auto rows = [&](const std::string& proj, const std::shared_ptr<nn::Linear>& l) {
      return any_unmasked(masks, p + proj + ".weight", inner, l->in_features, true);
    };
    const std::vector<uint8_t> q = rows("q_proj", mha->q_proj), k = rows("k_proj", mha->k_proj),
                               v = rows("v_proj", mha->v_proj);
    const std::vector<uint8_t> o =
        any_unmasked(masks, p + "out_proj.weight", mha->out_proj->out_features, inner, false);
    for (int64_t head = 0; head < mha->num_heads; ++head) {
      const auto b = static_cast<long>(head * h.head_dim), e = static_cast<long>((head + 1) * h.head_dim);
      auto any = [&](const std::vector<uint8_t>& f) { return std::any_of(f.begin() + b, f.begin() + e, [](uint8_t x) { return x != 0; }); };
      h.keep.push_back(any(v) && any(o));
    }
    const std::vector<uint8_t> kept = h.features();
    for (const auto& [proj, f] : {std::pair{"q_proj", q}, {"k_proj", k}, {"v_proj", v}, {"out_proj", o}}) {
      int64_t stay = 0;
      for (size_t i = 0; i < f.size(); ++i) stay += kept[i] && !f[i];
      if (stay > 0)
        h.notes.push_back(p + proj + ": " + std::to_string(stay) + " masked " +
                          (std::string(proj) == "out_proj" ? "columns" : "rows") +
                          " stay (zero weights; attention loses whole heads, and a head goes only when its value "
                          "rows or its out_proj columns are all masked)");
    }
    out.emplace(name, std::move(h));
  }
  return out;
}

}  // namespace shrink::compression
