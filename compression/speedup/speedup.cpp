#include "compression/speedup/speedup.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "compression/speedup/attention_heads.h"
#include "compression/speedup/dependency.h"
#include "framework/core/autograd.h"
#include "framework/nn/layers.h"
#include "framework/train/progress.h"

namespace shrink::compression {

namespace {

int64_t channel_axis(const Shape& s) { return s.size() >= 4 ? 1 : static_cast<int64_t>(s.size()) - 1; }
int64_t channel_count(const Shape& s) { return s.empty() ? 1 : s[static_cast<size_t>(channel_axis(s))]; }

// The channels of one value along its channel axis: which are kept, and the constant each removed
// channel carries (what the masked model computes there).
struct Channels {
  std::vector<uint8_t> keep;
  std::vector<float> value;
  static Channels all(int64_t n) { return {std::vector<uint8_t>(static_cast<size_t>(n), 1), std::vector<float>(static_cast<size_t>(n), 0.f)}; }
  bool everything() const { return std::all_of(keep.begin(), keep.end(), [](uint8_t k) { return k != 0; }); }
  int64_t kept() const { return std::count(keep.begin(), keep.end(), 1); }
};

std::vector<int64_t> indices(const std::vector<uint8_t>& keep) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) out.push_back(static_cast<int64_t>(i));
  return out;
}

// A layer's plan: the channels it keeps on each side and the constants folded into its bias.
struct LayerPlan {
  nn::Module* module = nullptr;
  std::string type;
  std::vector<uint8_t> in_keep, out_keep;
  std::vector<float> in_value;  // the constants of the removed inputs
  std::vector<float> fold;  // per output channel, added to the bias
  int64_t groups_after = 1;  // convolutions
  // Layer norms: the removed features' constants, which still count in the statistics.
  int64_t removed = 0;
  double removed_mean = 0.0, removed_m2 = 0.0;
  bool seen = false;
};

float apply_activation(OpKind k, float v) {
  switch (k) {
    case OpKind::Relu: return std::max(v, 0.f);
    case OpKind::Relu6: return std::min(std::max(v, 0.f), 6.f);
    case OpKind::Gelu: return 0.5f * v * (1.f + std::erf(v / std::sqrt(2.f)));
    case OpKind::Sigmoid: return 1.f / (1.f + std::exp(-v));
    case OpKind::Tanh: return std::tanh(v);
    default: return v;  // dropout (eval), copies, pooling of a constant
  }
}

bool is_activation_like(OpKind k) {
  switch (k) {
    case OpKind::Relu: case OpKind::Relu6: case OpKind::Gelu: case OpKind::Sigmoid: case OpKind::Tanh:
    case OpKind::Dropout: case OpKind::Copy: case OpKind::ToDevice: case OpKind::MaxPool2d:
    case OpKind::AvgPool2d: case OpKind::AdaptiveAvgPool2d:
      return true;
    default:
      return false;
  }
}

// A parameter with its mask applied, on the CPU.
Tensor effective(nn::Module& m, const std::string& module, const std::string& name, const Masks& masks) {
  Tensor p = m.param(name);
  if (!p.defined()) return p;
  p = p.detach().to(Device::CPU).contiguous_copy();
  auto it = masks.find(module + "." + name);
  if (it != masks.end()) p = mul(p, expand(it->second.to(Device::CPU), p.shape())).contiguous_copy();
  return p;
}

// The planner: walks the graph once, computing every value's channels and every layer's plan, and
// collects what it cannot do.
class Planner {
 public:
  Planner(nn::Module& model, const Masks& masks, const Graph& graph) : model_(model), masks_(masks), graph_(graph) {
    for (auto& [name, m] : model.named_modules()) modules_.emplace(m.get(), name);
    heads = plan_attention_heads(model, masks);
    layer_keeps();
    states_.resize(graph.nodes.size());
    inside_.resize(graph.nodes.size());
    for (size_t k = 0; k < graph.nodes.size(); ++k) visit(k);
    for (int out : graph.outputs) {
      if (out < 0) continue;
      if (!states_[static_cast<size_t>(out)].everything())
        refuse(static_cast<size_t>(out), "the model's output would lose channels (prune the layers before it only)");
      if (const std::string* owner = inside_[static_cast<size_t>(out)])
        refuse(static_cast<size_t>(out), "the model returns an inner value of '" + *owner +
                                             "', whose heads are being removed");
    }
    for (const auto& [name, h] : heads) notes.insert(notes.end(), h.notes.begin(), h.notes.end());
  }

  std::vector<std::string> errors;
  std::map<std::string, LayerPlan> plans;  // by module name
  std::vector<std::string> inexact;
  std::vector<std::string> notes;
  std::map<std::string, AttentionHeads> heads;  // every MultiheadAttention, by module name

 private:
  // Output channels each Conv2d/Linear keeps: its weight mask's rows, united over dependency sets.
  void layer_keeps() {
    std::map<std::string, std::vector<uint8_t>> keep;
    for (const GraphNode& n : graph_.nodes) {
      if (n.kind == OpKind::Embedding) {  // features are the weight's columns (NNI: from its output mask)
        const int64_t dim = n.shape.back();
        std::vector<uint8_t> k(static_cast<size_t>(dim), 1);
        auto it = masks_.find(n.module + ".weight");
        if (it != masks_.end()) {
          const std::vector<float> m = expand(it->second.to(Device::CPU), n.input_shapes.at(0)).contiguous_copy().to_vector();
          std::fill(k.begin(), k.end(), 0);
          for (size_t i = 0; i < m.size(); ++i) k[i % k.size()] |= m[i] != 0.f;
        }
        keep[n.module] = k;
        continue;
      }
      if (n.kind != OpKind::Conv2d && n.kind != OpKind::Linear) continue;
      const int64_t out = n.kind == OpKind::Conv2d ? n.shape.at(1) : n.shape.back();
      std::vector<uint8_t> k(static_cast<size_t>(out), 1);
      auto it = masks_.find(n.module + ".weight");
      if (it != masks_.end()) {
        const std::vector<float> m = it->second.to(Device::CPU).to_vector();
        const size_t per = m.size() / static_cast<size_t>(out);
        for (size_t o = 0; o < k.size(); ++o)
          k[o] = std::any_of(m.begin() + static_cast<long>(o * per), m.begin() + static_cast<long>((o + 1) * per),
                             [](float v) { return v != 0.f; });
      }
      keep[n.module] = k;
    }
    const ChannelDependencies deps = find_channel_dependencies(model_, graph_);
    for (const auto& set : deps.sets) {
      std::vector<uint8_t> u;
      for (const std::string& m : set) {
        auto it = keep.find(m);
        if (it == keep.end()) continue;
        if (u.empty()) u = it->second;
        else if (u.size() == it->second.size())
          for (size_t i = 0; i < u.size(); ++i) u[i] |= it->second[i];
      }
      for (const std::string& m : set)
        if (keep.count(m) && keep[m].size() == u.size()) keep[m] = u;
    }
    // Attention projections keep whole heads (attention_heads.h), whatever their masks say.
    for (const auto& [name, h] : heads) {
      const std::string p = name.empty() ? "" : name + ".";
      for (const char* proj : {"q_proj", "k_proj", "v_proj"})
        if (keep.count(p + proj)) keep[p + proj] = h.features();
    }
    out_keep_ = std::move(keep);
  }

  // The MultiheadAttention (name, heads) whose heads are being removed and whose projection
  // `module` is (q/k/v or out_proj), if any.
  const std::pair<const std::string, AttentionHeads>* pruned_heads_of(const std::string& module,
                                                                      const std::string& proj) const {
    std::string owner;
    if (module != proj) {
      const std::string suffix = "." + proj;
      if (module.size() <= suffix.size() || module.compare(module.size() - suffix.size(), suffix.size(), suffix) != 0)
        return nullptr;
      owner = module.substr(0, module.size() - suffix.size());
    }
    auto it = heads.find(owner);
    return it != heads.end() && it->second.kept() < static_cast<int64_t>(it->second.keep.size()) ? &*it : nullptr;
  }

  void refuse(size_t k, const std::string& why) {
    const GraphNode& n = graph_.nodes[k];
    std::ostringstream os;
    os << "node " << k << " " << op_kind_name(n.kind) << " in '" << n.module << "': " << why;
    errors.push_back(os.str());
  }

  Channels input(const GraphNode& n, size_t i) const {
    return n.inputs[i] >= 0 ? states_[static_cast<size_t>(n.inputs[i])] : Channels::all(channel_count(n.input_shapes[i]));
  }

  // Input 0 of a layer: a whole one as `size` kept channels (its own axis may differ, e.g. a Linear
  // on [N, C, H, W] reads its last dim), else as the producer left it.
  Channels sized_input(const GraphNode& n, int64_t size) const {
    const Channels in = input(n, 0);
    return in.everything() ? Channels::all(size) : in;
  }

  LayerPlan& plan(const GraphNode& n, const char* type, const Channels& in, size_t k) {
    LayerPlan& p = plans[n.module];
    std::vector<float> removed(in.value.size(), 0.f);
    for (size_t c = 0; c < removed.size(); ++c)
      if (!in.keep[c]) removed[c] = in.value[c];
    // One plan serves every call: the calls must lose the same channels, carrying the same constants.
    if (p.seen && (p.in_keep != in.keep || p.in_value != removed))
      refuse(k, "the module runs twice with different channels (or constants) removed");
    p.seen = true;
    p.module = model_.find(n.module).get();
    p.type = type;
    p.in_keep = in.keep;
    p.in_value = std::move(removed);
    return p;
  }

  // Folds the constants of removed input channels into the layer's bias: for output o of group g,
  // fold[o] += sum over removed inputs c of group g of value[c] * sum of W[o, c - g * in_g, ...].
  // Returns whether any removed input carried a non-zero constant.
  static bool fold_inputs(const Tensor& w, const Channels& in, int64_t groups, std::vector<float>& fold) {
    const int64_t out = w.size(0), per_out = w.numel() / out, in_g = static_cast<int64_t>(in.keep.size()) / groups;
    const int64_t out_g = out / groups, k = per_out / in_g;
    const std::vector<float> wv = w.to_vector();
    bool any = false;
    for (int64_t o = 0; o < out; ++o) {
      const int64_t g = o / out_g;
      for (int64_t cl = 0; cl < in_g; ++cl) {
        const size_t c = static_cast<size_t>(g * in_g + cl);
        if (in.keep[c] || in.value[c] == 0.f) continue;
        any = true;
        double s = 0.0;
        for (int64_t j = 0; j < k; ++j) s += wv[static_cast<size_t>(o * per_out + cl * k + j)];
        fold[static_cast<size_t>(o)] += static_cast<float>(in.value[c] * s);
      }
    }
    return any;
  }

  // A Conv2d / Linear output: the kept channels, and for a removed one its (masked) bias plus the
  // constants folded into it.
  static Channels layer_output(const LayerPlan& p, const Tensor& bias) {
    const size_t n = p.out_keep.size();
    const std::vector<float> b = bias.defined() ? bias.to_vector() : std::vector<float>(n, 0.f);
    Channels c{p.out_keep, std::vector<float>(n, 0.f)};
    for (size_t o = 0; o < n; ++o)
      if (!c.keep[o]) c.value[o] = b[o] + p.fold[o];
    return c;
  }

  void visit(size_t k) {
    const GraphNode& n = graph_.nodes[k];
    Channels& st = states_[k];
    const int64_t channels = channel_count(n.shape);
    std::vector<size_t> acts;  // inputs that are values, not parameters
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (n.inputs[i] != GraphNode::kParameter) acts.push_back(i);
    const bool inputs_whole = std::all_of(acts.begin(), acts.end(), [&](size_t i) { return input(n, i).everything(); });
    // Every branch below sets st on success; a refused node passes every channel on, so the walk
    // goes on (and reports every refusal) with consistent sizes.
    st = Channels::all(channels);
    // The ops of a MultiheadAttention itself (head reshapes, scores, softmax, context) follow its
    // head count; what they hand on is whole. Only the attention's out_proj may read them when heads
    // go: any other reader (e.g. of the averaged attention weights) would see them change.
    if (auto it = heads.find(n.module); it != heads.end() && n.kind != OpKind::Linear) {
      if (it->second.kept() < static_cast<int64_t>(it->second.keep.size())) inside_[k] = &it->first;
      return;
    }
    for (size_t i : acts) {
      const int producer = n.inputs[i];
      if (producer < 0 || !inside_[static_cast<size_t>(producer)]) continue;
      const std::string& owner = *inside_[static_cast<size_t>(producer)];
      if (n.module != (owner.empty() ? "out_proj" : owner + ".out_proj"))
        return refuse(k, "reads an inner value of '" + owner + "' (e.g. its attention weights), whose heads are being removed");
    }

    if (n.kind == OpKind::Conv2d) {
      auto* conv = dynamic_cast<nn::Conv2d*>(model_.find(n.module).get());
      if (!conv) return refuse(k, "a conv2d op outside an nn::Conv2d module");
      const Channels in = sized_input(n, conv->in_channels);
      if (static_cast<int64_t>(in.keep.size()) != conv->in_channels)
        return refuse(k, "its input's channels are not along dim 1");
      LayerPlan& p = plan(n, "Conv2d", in, k);
      const Tensor w = effective(*conv, n.module, "weight", masks_), b = effective(*conv, n.module, "bias", masks_);
      p.fold.assign(static_cast<size_t>(channels), 0.f);
      const int64_t groups = conv->groups, in_g = conv->in_channels / groups, out_g = conv->out_channels / groups;
      // A depthwise channel only sees its own input channel: it is kept exactly when that is.
      p.out_keep = in_g == 1 && out_g == 1 ? in.keep : out_keep_[n.module];
      if (fold_inputs(w, in, groups, p.fold) && conv->padding > 0) note_inexact(n.module);
      // Every group keeps the same numbers of inputs and outputs, or loses all of both
      // (NNI's UnBalancedGroupError / EmptyLayerError).
      if (std::none_of(p.out_keep.begin(), p.out_keep.end(), [](uint8_t v) { return v != 0; }))
        return refuse(k, "every output channel is removed (a layer cannot be pruned to empty)");
      int64_t kin = -1, kout = -1;
      p.groups_after = 0;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t ki = std::count(in.keep.begin() + g * in_g, in.keep.begin() + (g + 1) * in_g, 1);
        const int64_t ko = std::count(p.out_keep.begin() + g * out_g, p.out_keep.begin() + (g + 1) * out_g, 1);
        if (ki == 0 && ko == 0) continue;
        if (ki == 0 || ko == 0 || (kin >= 0 && (ki != kin || ko != kout)))
          return refuse(k, "convolution with " + std::to_string(groups) + " groups: group " + std::to_string(g) +
                               " keeps " + std::to_string(ki) + " inputs and " + std::to_string(ko) +
                               " outputs, unlike the others (give its input layers internal_metric_block " +
                               std::to_string(groups) + " in its dependency group)");
        kin = ki;
        kout = ko;
        ++p.groups_after;
      }
      st = layer_output(p, b);
      return;
    }
    if (n.kind == OpKind::Linear) {
      auto* lin = dynamic_cast<nn::Linear*>(model_.find(n.module).get());
      if (!lin) return refuse(k, "a linear op outside an nn::Linear module");
      Channels in = sized_input(n, lin->in_features);
      if (const auto* attention = pruned_heads_of(n.module, "out_proj")) {
        const AttentionHeads* h = &attention->second;
        if (h->kept() == 0) return refuse(k, "every head of its attention is removed (a layer cannot be pruned to empty)");
        const int producer = n.inputs.empty() ? -1 : n.inputs[0];
        auto v = values_.find(&attention->first);
        if (producer < 0 || inside_[static_cast<size_t>(producer)] != &attention->first || v == values_.end() ||
            v->second.keep.size() != h->features().size())
          return refuse(k, "an out_proj whose input is not its attention's context (after its v_proj), while heads go");
        // The context of a removed head: its value rows' constants (attention_heads.h).
        in = Channels::all(lin->in_features);
        in.keep = h->features();
        for (size_t c = 0; c < in.keep.size(); ++c)
          if (!in.keep[c] && !v->second.keep[c]) in.value[c] = v->second.value[c];
      }
      if (static_cast<int64_t>(in.keep.size()) != lin->in_features)
        return refuse(k, "its input's removed channels are not along the last dim");
      const int64_t outs = lin->out_features;  // along the last dim, whatever the rank
      if (n.shape.size() >= 4 && !std::all_of(out_keep_[n.module].begin(), out_keep_[n.module].end(),
                                              [](uint8_t v) { return v != 0; }))
        return refuse(k, "a Linear on a rank-4 value with removed outputs");
      if (channels != outs) {  // rank >= 4: the value's channels (dim 1) are not this layer's
        plan(n, "Linear", in, k).out_keep = out_keep_[n.module];
        plans[n.module].fold.assign(static_cast<size_t>(outs), 0.f);
        return;
      }
      LayerPlan& p = plan(n, "Linear", in, k);
      const Tensor w = effective(*lin, n.module, "weight", masks_), b = effective(*lin, n.module, "bias", masks_);
      p.fold.assign(static_cast<size_t>(channels), 0.f);
      fold_inputs(w, in, 1, p.fold);  // exact: every feature is one column
      p.out_keep = out_keep_[n.module];
      st = layer_output(p, b);
      // A projection of an attention losing heads: its removed features are constants only where
      // masked (values), so nothing but the attention's own ops may read it.
      for (const char* proj : {"q_proj", "k_proj", "v_proj"})
        if (const auto* attention = pruned_heads_of(n.module, proj)) {
          inside_[k] = &attention->first;
          if (std::string(proj) == "v_proj") values_[&attention->first] = st;
        }
      return;
    }
    if (n.kind == OpKind::Embedding) {
      auto* emb = dynamic_cast<nn::Embedding*>(model_.find(n.module).get());
      if (!emb) return refuse(k, "an embedding op outside an nn::Embedding module");
      LayerPlan& p = plan(n, "Embedding", Channels::all(emb->num_embeddings), k);
      p.out_keep = out_keep_[n.module];
      p.fold.assign(p.out_keep.size(), 0.f);
      const Channels out{p.out_keep, std::vector<float>(p.out_keep.size(), 0.f)};  // a masked column reads 0
      if (out.everything()) return;
      if (out.kept() == 0) return refuse(k, "every feature is removed (a layer cannot be pruned to empty)");
      if (n.shape.size() >= 4) return refuse(k, "an Embedding of rank-3 indices with removed features (its features are not the channels)");
      st = out;
      return;
    }
    if (n.kind == OpKind::LayerNorm) return layer_norm(n, k);
    if (n.kind == OpKind::BatchNorm) {
      auto* bn = dynamic_cast<nn::BatchNorm*>(model_.find(n.module).get());
      if (!bn) return refuse(k, "a batch norm op outside an nn::BatchNorm module");
      const Channels in = input(n, 0);
      LayerPlan& p = plan(n, bn->type_name().c_str(), in, k);
      p.out_keep = in.keep;
      st = in;
      if (in.everything()) return;
      if (!bn->has_buffer("running_mean") || !bn->buffer("running_mean").defined())
        return refuse(k, "a batch norm without running statistics over removed channels");
      const Tensor g = effective(*bn, n.module, "weight", masks_), b = effective(*bn, n.module, "bias", masks_);
      const std::vector<float> mean = bn->buffer("running_mean").to(Device::CPU).to_vector();
      const std::vector<float> var = bn->buffer("running_var").to(Device::CPU).to_vector();
      const std::vector<float> gv = g.defined() ? g.to_vector() : std::vector<float>(mean.size(), 1.f);
      const std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>(mean.size(), 0.f);
      for (size_t c = 0; c < st.keep.size(); ++c)
        if (!st.keep[c])
          st.value[c] = (in.value[c] - mean[c]) / std::sqrt(var[c] + bn->eps) * gv[c] + bv[c];
      return;
    }
    if (inputs_whole) {
      st = Channels::all(channels);
      return;
    }
    // From here on some input lost channels.
    if (is_activation_like(n.kind) && acts.size() == 1 && channel_count(n.input_shapes[acts[0]]) == channels) {
      st = input(n, acts[0]);
      for (size_t c = 0; c < st.keep.size(); ++c)
        if (!st.keep[c]) st.value[c] = apply_activation(n.kind, st.value[c]);
      return;
    }
    if (n.kind == OpKind::Add || n.kind == OpKind::Sub || n.kind == OpKind::Mul || n.kind == OpKind::Div) {
      if (acts.size() != 2 || n.input_shapes[acts[0]] != n.shape || n.input_shapes[acts[1]] != n.shape)
        return refuse(k, "an elementwise op with broadcasting over removed channels");
      const Channels a = input(n, acts[0]), b = input(n, acts[1]);
      if (a.keep != b.keep) return refuse(k, "its inputs keep different channels (put their layers in one dependency group)");
      st = a;
      for (size_t c = 0; c < st.keep.size(); ++c) {
        if (st.keep[c]) continue;
        const float x = a.value[c], y = b.value[c];
        st.value[c] = n.kind == OpKind::Add ? x + y : n.kind == OpKind::Sub ? x - y : n.kind == OpKind::Mul ? x * y : x / y;
      }
      return;
    }
    if (n.kind == OpKind::Reshape && acts.size() == 1) {
      const Shape& is = n.input_shapes[acts[0]];
      if (is.size() == 4 && n.shape.size() == 2 && n.shape[1] == is[1] * is[2] * is[3]) {  // flatten
        const Channels in = input(n, acts[0]);
        st = Channels{};
        const int64_t hw = is[2] * is[3];
        for (int64_t c = 0; c < is[1]; ++c)
          for (int64_t j = 0; j < hw; ++j) {
            st.keep.push_back(in.keep[static_cast<size_t>(c)]);
            st.value.push_back(in.value[static_cast<size_t>(c)]);
          }
        return;
      }
      return refuse(k, "a reshape other than flattening [N, C, H, W] to [N, C*H*W] over removed channels");
    }
    if (n.kind == OpKind::Cat && !n.attrs.empty()) {
      if (n.attrs[0] == channel_axis(n.shape)) {
        st = Channels{};
        for (size_t i : acts) {
          const Channels in = input(n, i);
          st.keep.insert(st.keep.end(), in.keep.begin(), in.keep.end());
          st.value.insert(st.value.end(), in.value.begin(), in.value.end());
        }
        return;
      }
      st = input(n, acts.at(0));
      for (size_t i : acts)
        if (input(n, i).keep != st.keep) return refuse(k, "cat of values that keep different channels");
      return;
    }
    refuse(k, "cannot carry removed channels through this op");
  }

  // A LayerNorm over the last dim: its removed features go, their constants stay in its statistics
  // (nn::LayerNorm::removed), so the kept features are normalised exactly as before. A removed
  // feature's output is its bias only where its weight is masked; elsewhere it would vary with the
  // input, and that is refused.
  void layer_norm(const GraphNode& n, size_t k) {
    Channels& st = states_[k];
    auto* ln = dynamic_cast<nn::LayerNorm*>(model_.find(n.module).get());
    if (!ln) return refuse(k, "a layer norm op outside an nn::LayerNorm module");
    const Channels in = input(n, 0);
    LayerPlan& p = plan(n, "LayerNorm", in, k);
    p.out_keep = in.keep;
    if (in.everything()) return;
    if (ln->normalized_shape.size() != 1 || n.shape.size() >= 4)
      return refuse(k, "a layer norm over more than the last dim, with removed channels");
    const Tensor g = effective(*ln, n.module, "weight", masks_), b = effective(*ln, n.module, "bias", masks_);
    const std::vector<float> gv = g.defined() ? g.to_vector() : std::vector<float>(in.keep.size(), 1.f);
    const std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>(in.keep.size(), 0.f);
    Channels out = in;
    p.removed = 0;
    p.removed_mean = p.removed_m2 = 0.0;
    for (size_t c = 0; c < in.keep.size(); ++c) {
      if (in.keep[c]) continue;
      if (gv[c] != 0.f)
        return refuse(k, "removed feature " + std::to_string(c) + " is normalised with an unmasked weight, so its "
                         "output varies with the input (mask the LayerNorm's weight there: one dependency group "
                         "with the layer before it)");
      // Welford: mean and M2 of the removed constants.
      ++p.removed;
      const double delta = in.value[c] - p.removed_mean;
      p.removed_mean += delta / static_cast<double>(p.removed);
      p.removed_m2 += delta * (in.value[c] - p.removed_mean);
      out.value[c] = bv[c];
    }
    st = out;
  }

  void note_inexact(const std::string& module) {
    if (std::find(inexact.begin(), inexact.end(), module) == inexact.end()) inexact.push_back(module);
  }

  nn::Module& model_;
  const Masks& masks_;
  const Graph& graph_;
  std::map<const nn::Module*, std::string> modules_;
  std::map<std::string, std::vector<uint8_t>> out_keep_;
  std::vector<Channels> states_;
  // Per node: the attention losing heads whose inner value (or projection) it is, else nullptr.
  std::vector<const std::string*> inside_;
  std::map<const std::string*, Channels> values_;  // v_proj outputs of attentions losing heads, by attention
};

// Rows (dim 0) `rows` and, within each row, columns (dim 1) `cols` of a [R, C, ...] tensor.
Tensor select(const Tensor& t, const std::vector<int64_t>& rows, const std::vector<int64_t>* cols) {
  const std::vector<float> v = t.to_vector();
  const int64_t r = t.size(0), per_row = t.numel() / r;
  const int64_t c = t.dim() > 1 ? t.size(1) : 1, per_col = per_row / c;
  std::vector<float> out;
  for (int64_t i : rows)
    for (int64_t j = 0; j < (cols ? static_cast<int64_t>(cols->size()) : c); ++j) {
      const int64_t col = cols ? (*cols)[static_cast<size_t>(j)] : j;
      const auto begin = v.begin() + static_cast<long>(i * per_row + col * per_col);
      out.insert(out.end(), begin, begin + per_col);
    }
  Shape s = t.shape();
  s[0] = static_cast<int64_t>(rows.size());
  if (cols && t.dim() > 1) s[1] = static_cast<int64_t>(cols->size());
  return Tensor::from_vector(out, s);
}

// A convolution's weight [O, I/groups, kh, kw] reduced to the kept outputs and, in each output's
// group, the kept inputs of that group (the planner checked the groups are balanced).
Tensor select_grouped(const Tensor& w, const std::vector<uint8_t>& out_keep, const std::vector<uint8_t>& in_keep,
                      int64_t groups) {
  const std::vector<float> v = w.to_vector();
  const int64_t out = w.size(0), in_g = w.size(1), out_g = out / groups, k = w.numel() / (out * in_g);
  std::vector<float> r;
  int64_t rows = 0, cols = 0;
  for (int64_t o = 0; o < out; ++o) {
    if (!out_keep[static_cast<size_t>(o)]) continue;
    ++rows;
    const int64_t g = o / out_g;
    cols = 0;
    for (int64_t cl = 0; cl < in_g; ++cl) {
      if (!in_keep[static_cast<size_t>(g * in_g + cl)]) continue;
      ++cols;
      const auto begin = v.begin() + static_cast<long>((o * in_g + cl) * k);
      r.insert(r.end(), begin, begin + k);
    }
  }
  return Tensor::from_vector(r, {rows, cols, w.size(2), w.size(3)});
}

// A shrunk parameter: trainable again on the layer's device.
Tensor trainable(const Tensor& cpu, Device device) {
  Tensor t = cpu.to(device);
  t.set_requires_grad(true);
  return t;
}

// The bias of a shrunk Conv2d / Linear: the folded constants added, then the kept outputs. A layer
// without a bias gets one when a constant lands on a kept output.
void shrink_bias(nn::Module& m, const LayerPlan& p, const std::vector<int64_t>& out, Device device) {
  Tensor b = m.param("bias");
  std::vector<float> bias = b.defined() ? b.to(Device::CPU).to_vector() : std::vector<float>(p.out_keep.size(), 0.f);
  bool any_fold = false;
  for (size_t o = 0; o < bias.size(); ++o) {
    bias[o] += p.fold[o];
    any_fold |= p.fold[o] != 0.f && p.out_keep[o];
  }
  if (b.defined() || any_fold)
    m.set_parameter("bias", trainable(select(Tensor::from_vector(bias, {static_cast<int64_t>(bias.size())}), out, nullptr),
                                      device));
}

int64_t count_params(nn::Module& model) {
  int64_t n = 0;
  for (auto& [name, p] : model.named_parameters())
    if (p.defined()) n += p.numel();
  return n;
}

Tensor first_output(nn::Module& model, const std::vector<nn::Value>& input) {
  NoGradGuard ng;
  nn::Value v = model(input);
  while (v.is_list()) v = v.items().at(0);
  return v.tensor().to(Device::CPU).contiguous_copy();
}

// Speedup works on parameter masks; an activation mask is refused (empty when there is none).
std::vector<std::string> activation_mask_refusal(const Masks& masks) {
  for (const auto& [key, m] : masks) {
    const size_t dot = key.rfind('.');
    const std::string target = dot == std::string::npos ? key : key.substr(dot + 1);
    if (target.rfind("_input_", 0) == 0 || target.rfind("_output_", 0) == 0)
      return {"mask " + key + ": speedup takes parameter masks (weight, bias); activation masks are not supported"};
  }
  return {};
}
}  // namespace

std::vector<std::string> speedup_preflight(nn::Module& model, const Masks& masks, const std::vector<nn::Value>& input) {
  std::vector<std::string> refused = activation_mask_refusal(masks);
  if (!refused.empty()) return refused;
  return Planner(model, masks, trace(model, input)).errors;
}

SpeedupReport speedup_model(nn::Module& model, const Masks& masks, const std::vector<nn::Value>& input) {
  std::vector<std::string> refused = activation_mask_refusal(masks);
  const Graph g = refused.empty() ? trace(model, input) : Graph{};
  Planner planner(model, masks, g);
  if (refused.empty()) refused = planner.errors;
  if (!refused.empty()) {
    std::string all;
    for (const auto& r : refused) all += "\n  " + r;
    fail("speedup refused, nothing was changed:", all);
  }
  SpeedupReport report;
  report.params_before = count_params(model);
  report.macs_before = count_macs(g);
  report.counts_before = count_layers(model, g, masks);
  report.inexact = planner.inexact;

  const bool was_training = model.is_training();
  model.eval();
  // The masked model, as the reference: masks baked into the weights.
  {
    NoGradGuard ng;
    for (const auto& [key, mask] : masks) {
      const size_t dot = key.rfind('.');
      auto m = model.find(key.substr(0, dot));
      const std::string name = key.substr(dot + 1);
      if (!m || !m->has_parameter(name) || !m->param(name).defined()) continue;
      Tensor& p = m->parameter(name);
      p.copy_(mul(p, expand(mask.to(p.device()), p.shape())));
    }
  }
  const Tensor reference = first_output(model, input);

  progress::Bar bar("speedup", static_cast<int64_t>(planner.plans.size()));
  for (auto& [name, p] : planner.plans) {
    bar.step(name);
    nn::Module& m = *p.module;
    const Device device = m.parameter_device();
    const std::vector<int64_t> out = indices(p.out_keep), in = indices(p.in_keep);
    LayerChange change{name, p.type, static_cast<int64_t>(p.in_keep.size()), static_cast<int64_t>(in.size()),
                       static_cast<int64_t>(p.out_keep.size()), static_cast<int64_t>(out.size())};
    NoGradGuard ng;
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      conv->set_parameter("weight", trainable(select_grouped(conv->parameter("weight").to(Device::CPU), p.out_keep,
                                                             p.in_keep, conv->groups), device));
      shrink_bias(*conv, p, out, device);
      conv->out_channels = static_cast<int64_t>(out.size());
      conv->in_channels = static_cast<int64_t>(in.size());
      conv->groups = p.groups_after;
    } else if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      Tensor w = lin->parameter("weight").to(Device::CPU);
      lin->set_parameter("weight", trainable(select(w, out, &in), device));
      shrink_bias(*lin, p, out, device);
      lin->out_features = static_cast<int64_t>(out.size());
      lin->in_features = static_cast<int64_t>(in.size());
    } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
      for (const char* pn : {"weight", "bias"})
        if (bn->param(pn).defined()) bn->set_parameter(pn, trainable(select(bn->param(pn).to(Device::CPU), out, nullptr), device));
      for (const char* bname : {"running_mean", "running_var"})
        if (bn->has_buffer(bname)) bn->set_buffer(bname, select(bn->buffer(bname).to(Device::CPU), out, nullptr).to(device));
      bn->num_features = static_cast<int64_t>(out.size());
    } else if (auto* ln = dynamic_cast<nn::LayerNorm*>(&m); ln && p.removed > 0) {
      for (const char* pn : {"weight", "bias"})
        if (ln->param(pn).defined()) ln->set_parameter(pn, trainable(select(ln->param(pn).to(Device::CPU), out, nullptr), device));
      ln->normalized_shape = {static_cast<int64_t>(out.size())};
      // Merged with what an earlier speedup removed (Chan et al.'s pairwise update).
      const double n1 = static_cast<double>(ln->removed), n2 = static_cast<double>(p.removed), delta = p.removed_mean - ln->removed_mean;
      ln->removed_m2 += p.removed_m2 + delta * delta * n1 * n2 / (n1 + n2);
      ln->removed_mean += delta * n2 / (n1 + n2);
      ln->removed += p.removed;
    } else if (auto* emb = dynamic_cast<nn::Embedding*>(&m); emb && static_cast<int64_t>(out.size()) < emb->embedding_dim) {
      const std::vector<int64_t> rows = indices(std::vector<uint8_t>(static_cast<size_t>(emb->num_embeddings), 1));
      emb->set_parameter("weight", trainable(select(emb->parameter("weight").to(Device::CPU), rows, &out), device));
      emb->embedding_dim = static_cast<int64_t>(out.size());
    }
    if (change.in_after != change.in_before || change.out_after != change.out_before) report.layers.push_back(change);
  }
  // Attentions take their sizes from their projections, shrunk above.
  for (const auto& [name, h] : planner.heads) {
    auto* mha = dynamic_cast<nn::MultiheadAttention*>(model.find(name).get());
    const int64_t heads_before = mha->num_heads, width_before = mha->embed_dim;
    mha->num_heads = mha->q_proj->out_features / mha->head_dim;  // an attention the trace missed keeps its heads
    mha->embed_dim = mha->q_proj->in_features;
    if (mha->num_heads != heads_before || mha->embed_dim != width_before)
      report.layers.push_back({name, "MultiheadAttention", width_before, mha->embed_dim, heads_before, mha->num_heads});
  }
  report.notes = planner.notes;
  const Tensor sped = first_output(model, input);
  model.train(was_training);
  SHRINK_CHECK(sped.shape() == reference.shape(), "speedup: the output shape changed from ", reference.shape(), " to ",
               sped.shape());
  const std::vector<float> a = reference.to_vector(), b = sped.to_vector();
  double scale = 0.0, diff = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  report.deviation = scale > 0 ? diff / scale : diff;
  report.params_after = count_params(model);
  const Graph after = trace(model, input);
  report.macs_after = count_macs(after);
  report.counts_after = count_layers(model, after);
  // Model order for the report.
  std::map<std::string, size_t> order;
  for (auto& [name, m] : model.named_modules()) order.emplace(name, order.size());
  std::sort(report.layers.begin(), report.layers.end(),
            [&](const LayerChange& x, const LayerChange& y) { return order[x.module] < order[y.module]; });
  return report;
}

}  // namespace shrink::compression
