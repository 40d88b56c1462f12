#include "compression/pruning/sparse_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "compression/pruning/smallest.h"
#include "framework/core/scalar_ops.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

namespace {

std::optional<double> opt_number(const boost::json::object& s, const char* key) {
  auto it = s.find(key);
  if (it == s.end() || it->value().is_null()) return std::nullopt;
  return it->value().to_number<double>();
}

std::optional<std::string> opt_id(const boost::json::object& s, const char* key) {
  auto it = s.find(key);
  if (it == s.end() || it->value().is_null()) return std::nullopt;
  if (it->value().is_string()) return "s:" + std::string(it->value().as_string());
  return "i:" + std::to_string(it->value().to_number<int64_t>());
}

std::string id_text(const std::string& id) { return id.substr(2); }

const boost::json::object& prune_settings(const EngineTarget& t) {
  return t.state->settings(CompressorKind::Pruning);
}

bool is_active(const EngineTarget& t) {
  if (!t.metric.defined()) return false;
  const auto& s = prune_settings(t);
  return opt_number(s, "sparse_ratio") || opt_number(s, "sparse_threshold");
}

std::vector<float> and_masks(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty()) return b;
  std::vector<float> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = (a[i] != 0.f && b[i] != 0.f) ? 1.f : 0.f;
  return out;
}

// Sorted (value, index) order: the order in which blocks are pruned (a NaN metric last).
std::vector<int64_t> prune_order(const float* v, int64_t n) {
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(),
            [v](int64_t a, int64_t b) { return scalar::ascending_before(v[a], a, v[b], b); });
  return idx;
}

int64_t lcm(int64_t a, int64_t b) { return a / std::gcd(a, b) * b; }

// Tensor [*metric shape] -> flat CPU values.
std::vector<float> values(const Tensor& t) { return t.detach().to_vector(); }

bool is_param(const TargetState& t) { return t.kind == TargetKind::Parameter || t.kind == TargetKind::Buffer; }

// The block mask in a shape that broadcasts to the target's (dims a block covers whole stay
// size 1): the wrapper broadcasts it into the mask buffer, so no full-size temporary is made.
Tensor block_mask(const EngineTarget& t, const Tensor& shrunk) {
  Tensor m = shrunk;
  if (t.scaling) m = t.scaling->expand(m, t.state->shape, /*full=*/false);
  else if (m.shape() != t.state->shape) m = reshape(m, t.state->shape);
  return m;
}

// DECISIONS rows 9, 21, 22: raw metrics compared across targets; each target kept within
// [floor(min * blocks), floor(max * blocks)] pruned blocks; the remaining budget goes to the
// lowest metrics of targets that still have room, stopping at the first block that would
// overshoot the group's element budget.
void allocate_global(std::vector<EngineTarget*>& members, double ratio,
                     std::map<EngineTarget*, std::vector<float>>& out, GroupReport& report) {
  struct Member {
    std::vector<float> metric;
    int64_t grain, min_blocks, max_blocks, pruned = 0;
  };
  std::vector<Member> m(members.size());
  int64_t total = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    const auto& s = prune_settings(*members[i]);
    m[i].metric = values(members[i]->metric);
    const int64_t blocks = static_cast<int64_t>(m[i].metric.size());
    const int64_t numel = shape_numel(members[i]->state->shape);
    m[i].grain = blocks ? numel / blocks : 0;
    m[i].min_blocks = static_cast<int64_t>(std::floor(blocks * opt_number(s, "min_sparse_ratio").value_or(0.0)));
    m[i].max_blocks = static_cast<int64_t>(std::floor(blocks * opt_number(s, "max_sparse_ratio").value_or(1.0)));
    total += numel;
  }
  int64_t budget = static_cast<int64_t>(std::floor(static_cast<double>(total) * ratio));
  report.wanted = budget;
  std::vector<std::vector<float>> masks(m.size());
  for (size_t i = 0; i < m.size(); ++i) masks[i].assign(m[i].metric.size(), 1.f);
  // Minimums first, each target's lowest blocks.
  for (size_t i = 0; i < m.size(); ++i) {
    std::vector<int64_t> order = prune_order(m[i].metric.data(), static_cast<int64_t>(m[i].metric.size()));
    for (int64_t k = 0; k < m[i].min_blocks; ++k) masks[i][order[k]] = 0.f;
    m[i].pruned = m[i].min_blocks;
    budget -= m[i].min_blocks * m[i].grain;
  }
  // Then the global order of the remaining blocks.
  struct Cand {
    float v;
    size_t member;
    int64_t index;
  };
  std::vector<Cand> cands;
  for (size_t i = 0; i < m.size(); ++i)
    for (int64_t j = 0; j < static_cast<int64_t>(m[i].metric.size()); ++j)
      if (masks[i][j] != 0.f) cands.push_back({m[i].metric[j], i, j});
  std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    if (a.v != b.v && !(a.v != a.v) && !(b.v != b.v)) return a.v < b.v;
    if ((a.v != a.v) != (b.v != b.v)) return b.v != b.v;  // NaN metrics last
    if (a.member != b.member) return a.member < b.member;
    return a.index < b.index;
  });
  for (const Cand& c : cands) {
    Member& mm = m[c.member];
    if (mm.pruned >= mm.max_blocks) continue;  // this target is at its max: skip it
    if (mm.grain > budget) break;
    masks[c.member][c.index] = 0.f;
    ++mm.pruned;
    budget -= mm.grain;
  }
  report.pruned = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    report.pruned += m[i].pruned * m[i].grain;
    out[members[i]] = masks[i];
  }
}

}  // namespace

std::optional<Scaling> scaling_for(const TargetState& t, const std::string& default_granularity) {
  const auto& settings = t.settings(CompressorKind::Pruning);
  auto it = settings.find("granularity");  // an aligned bias has no granularity of its own
  const boost::json::value g = it == settings.end() ? boost::json::value("default") : it->value();
  if (!(g.is_string() && g.as_string() == "default") && !g.is_null()) return Scaling::from_setting(g);
  if (default_granularity == "none") return std::nullopt;
  // NNI: parameters default to out_channel, activations to per_channel.
  return Scaling::from_granularity(t.kind == TargetKind::Input || t.kind == TargetKind::Output ? "per_channel"
                                                                                              : default_granularity);
}

namespace {

// mask may be metric itself (mark_smallest reads each value before writing its position).
void ratio_mask(const float* metric, int64_t n, double ratio, int64_t rows, float* mask) {
  if (ratio <= 0.0 || n == 0) {
    std::fill_n(mask, n, 1.f);
    return;
  }
  SHRINK_CHECK(rows >= 1 && n % rows == 0, "ratio_mask: ", n, " metric values do not split into ",
               rows, " rows (internal_metric_block)");
  const int64_t per_row = n / rows;
  const int64_t k = ratio >= 1.0 ? per_row : static_cast<int64_t>(std::floor(per_row * ratio));
  for (int64_t r = 0; r < rows; ++r) mark_smallest(metric + r * per_row, per_row, k, mask + r * per_row);
}

// ratio_mask of a metric the engine owns, as a CPU tensor of its shape. When nothing else holds
// the metric (a temporary such as Level's |w|), the mask is written over it: no new tensor.
Tensor ratio_mask(Tensor metric, double ratio) {
  Tensor m = metric.device() == Device::CPU ? std::move(metric) : metric.to(Device::CPU);
  Tensor mask = m.is_unique() ? m : Tensor::empty(m.shape());
  ratio_mask(m.data<float>(), m.numel(), ratio, 1, mask.data<float>());
  return mask;
}

}  // namespace

std::vector<float> ratio_mask(const std::vector<float>& metric, double ratio, int64_t rows) {
  std::vector<float> mask(metric.size());
  ratio_mask(metric.data(), static_cast<int64_t>(metric.size()), ratio, rows, mask.data());
  return mask;
}

EngineResult generate_masks(std::vector<EngineTarget>& targets) {
  EngineResult result;
  std::map<EngineTarget*, Tensor> shrunk;  // 0/1 masks in metric shape, on the CPU
  // Sets (or ANDs into) t's mask.
  auto put = [&shrunk](EngineTarget* t, const std::vector<float>& m) {
    auto it = shrunk.find(t);
    shrunk[t] = Tensor::from_vector(it == shrunk.end() ? m : and_masks(values(it->second), m), t->metric.shape());
  };
  std::vector<bool> done(targets.size(), false);

  // 1. Threshold targets.
  for (size_t i = 0; i < targets.size(); ++i) {
    EngineTarget& t = targets[i];
    if (!is_active(t)) continue;
    const auto& s = prune_settings(t);
    auto thr = opt_number(s, "sparse_threshold");
    if (!thr) continue;
    std::vector<float> mv = values(t.metric), mask(mv.size());
    int64_t kept = 0;
    for (size_t j = 0; j < mv.size(); ++j) kept += (mask[j] = mv[j] >= *thr ? 1.f : 0.f) != 0.f;
    const double ratio = mv.empty() ? 0.0 : 1.0 - static_cast<double>(kept) / mv.size();
    if (auto mn = opt_number(s, "min_sparse_ratio"); mn && ratio < *mn) mask = ratio_mask(mv, *mn);
    if (auto mx = opt_number(s, "max_sparse_ratio"); mx && ratio > *mx) mask = ratio_mask(mv, *mx);
    put(&t, mask);
    done[i] = true;
  }

  // 2. Dependency groups (every active target with an id, threshold targets included).
  std::map<std::string, std::vector<size_t>> dep;
  for (size_t i = 0; i < targets.size(); ++i)
    if (is_active(targets[i]))
      if (auto id = opt_id(prune_settings(targets[i]), "dependency_group_id")) dep[*id].push_back(i);
  for (auto& [id, members] : dep) {
    std::optional<double> ratio;
    int64_t block = 1;
    std::vector<float> group;
    for (size_t i : members) {
      EngineTarget& t = targets[i];
      const auto& s = prune_settings(t);
      if (auto r = opt_number(s, "sparse_ratio")) {
        SHRINK_CHECK(!ratio || *ratio == *r, "dependency group ", id_text(id), ": members have ",
                     "different sparse_ratio (", *ratio, " and ", *r, " at ", t.state->key(), ")");
        ratio = r;
      }
      block = lcm(block, static_cast<int64_t>(opt_number(s, "internal_metric_block").value_or(1.0)));
      std::vector<float> mv = values(t.metric);
      if (group.empty()) group.assign(mv.size(), 0.f);
      SHRINK_CHECK(mv.size() == group.size(), "dependency group ", id_text(id), ": ", t.state->key(),
                   " has ", mv.size(), " metric blocks, other members ", group.size(),
                   " (members must prune the same channels)");
      for (size_t j = 0; j < mv.size(); ++j) group[j] += mv[j] / static_cast<float>(members.size());
    }
    std::vector<float> mask = ratio ? ratio_mask(group, *ratio, block) : std::vector<float>(group.size(), 1.f);
    for (size_t i : members) {
      put(&targets[i], mask);
      done[i] = true;
    }
  }

  // 3. Global groups.
  std::map<std::string, std::vector<EngineTarget*>> global;
  for (size_t i = 0; i < targets.size(); ++i)
    if (!done[i] && is_active(targets[i]))
      if (auto id = opt_id(prune_settings(targets[i]), "global_group_id")) {
        global[*id].push_back(&targets[i]);
        done[i] = true;
      }
  for (auto& [id, members] : global) {
    std::optional<double> ratio;
    for (EngineTarget* t : members) {
      auto r = opt_number(prune_settings(*t), "sparse_ratio");
      SHRINK_CHECK(r.has_value(), "global group ", id_text(id), ": ", t->state->key(), " has no sparse_ratio");
      SHRINK_CHECK(!ratio || *ratio == *r, "global group ", id_text(id), ": members have different ",
                   "sparse_ratio (", *ratio, " and ", *r, " at ", t->state->key(), ")");
      ratio = r;
    }
    GroupReport rep;
    rep.group_id = id_text(id);
    std::map<EngineTarget*, std::vector<float>> masks;
    allocate_global(members, *ratio, masks, rep);
    for (auto& [t, m] : masks) put(t, m);
    result.global_groups.push_back(rep);
  }

  // 4. Per-target ratios.
  for (size_t i = 0; i < targets.size(); ++i) {
    if (done[i] || !is_active(targets[i])) continue;
    const auto& s = prune_settings(targets[i]);
    auto r = opt_number(s, "sparse_ratio");
    if (!r) continue;
    double ratio = std::min(opt_number(s, "max_sparse_ratio").value_or(1.0),
                            std::max(opt_number(s, "min_sparse_ratio").value_or(0.0), *r));
    // The metric is not needed after this: the engine takes it (its memory may become the mask).
    shrunk[&targets[i]] = ratio_mask(std::move(targets[i].metric), ratio);
    done[i] = true;
  }

  for (auto& [t, m] : shrunk) result.masks[t->state->key()] = block_mask(*t, m);

  // 5. Aligned targets follow a mask generated above (any element kept along the other dims).
  for (size_t i = 0; i < targets.size(); ++i) {
    EngineTarget& t = targets[i];
    if (done[i]) continue;
    auto it = prune_settings(t).find("align");
    if (it == prune_settings(t).end() || it->value().is_null()) continue;
    const auto& a = it->value().as_object();
    std::string src_module = a.at("module_name").is_null() ? t.state->module_name
                                                           : std::string(a.at("module_name").as_string());
    std::string src_key = src_module + "." + std::string(a.at("target_name").as_string());
    auto src = result.masks.find(src_key);
    if (src == result.masks.end()) continue;  // the source was not pruned in this call
    Tensor sm = src->second;
    for (const EngineTarget& o : targets)  // a parameter source counts along its full shape
      if (o.state->key() == src_key && is_param(*o.state)) sm = expand(sm, o.state->shape);
    std::vector<int64_t> keep;
    for (const auto& d : a.at("dims").as_array()) keep.push_back(wrap_dim(d.to_number<int64_t>(), sm.dim(), "align"));
    std::vector<int64_t> reduce_dims;
    for (int64_t d = 0; d < sm.dim(); ++d)
      if (std::find(keep.begin(), keep.end(), d) == keep.end()) reduce_dims.push_back(d);
    Tensor kept = reduce_dims.empty() ? sm : sum(sm, reduce_dims);
    Tensor m = gt(kept, 0.f);
    SHRINK_CHECK(m.numel() == shape_numel(t.state->shape), t.state->key(), ": aligned to ", src_key,
                 " along dims ", keep, " gives ", m.numel(), " values for a target of shape ",
                 t.state->shape);
    m = reshape(m, t.state->shape);
    if (t.scaling) {
      Tensor blocks = t.scaling->shrink(m, Scaling::Reduce::Max);
      m = t.scaling->expand(blocks, t.state->shape, true);
    }
    result.masks[t.state->key()] = m;
  }
  return result;
}

}  // namespace shrink::compression
