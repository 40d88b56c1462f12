#include "compression/speedup/dependency.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "compression/config/config_error.h"
#include "compression/config/config_list.h"
#include "compression/config/legacy.h"
#include "compression/config/select.h"

namespace shrink::compression {

namespace {

int64_t channel_dim(const Shape& s) { return s.size() >= 4 ? 1 : static_cast<int64_t>(s.size()) - 1; }
int64_t channels(const Shape& s) { return s.empty() ? 0 : s[static_cast<size_t>(channel_dim(s))]; }

bool passes_channels(OpKind k) {
  switch (k) {
    case OpKind::Relu: case OpKind::Relu6: case OpKind::Gelu: case OpKind::Sigmoid: case OpKind::Tanh:
    case OpKind::Dropout: case OpKind::Clamp: case OpKind::Mask: case OpKind::FakeQuant: case OpKind::Copy:
    case OpKind::ToDevice: case OpKind::AddScalar: case OpKind::MulScalar: case OpKind::Neg: case OpKind::Abs:
    case OpKind::Exp: case OpKind::Log: case OpKind::Sqrt: case OpKind::PowScalar: case OpKind::Round:
    case OpKind::Sign: case OpKind::MaxPool2d: case OpKind::AvgPool2d: case OpKind::AdaptiveAvgPool2d:
    case OpKind::BatchNorm: case OpKind::LayerNorm: case OpKind::Softmax: case OpKind::LogSoftmax:
      return true;
    default:
      return false;
  }
}

bool is_elementwise_binary(OpKind k) {
  return k == OpKind::Add || k == OpKind::Sub || k == OpKind::Mul || k == OpKind::Div;
}

// Union-find over channel sources (one per Conv2d/Linear/Embedding module).
struct Sources {
  std::vector<std::string> module;
  std::vector<size_t> parent;
  std::vector<int64_t> need;  // channel block each source needs
  std::map<std::string, size_t> id;

  size_t of(const std::string& name) {
    auto [it, fresh] = id.emplace(name, module.size());
    if (fresh) {
      module.push_back(name);
      parent.push_back(parent.size());
      need.push_back(1);
    }
    return it->second;
  }
  size_t find(size_t a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  }
  void unite(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

}  // namespace

ChannelDependencies find_channel_dependencies(const nn::Module& model, const Graph& graph) {
  Sources src;
  std::map<std::string, std::set<size_t>> norm_sources;  // norm module -> sources it normalises
  std::vector<std::vector<size_t>> node_sources(graph.nodes.size());
  auto input_sources = [&](const GraphNode& n, size_t i) -> std::vector<size_t> {
    return i < n.inputs.size() && n.inputs[i] >= 0 ? node_sources[static_cast<size_t>(n.inputs[i])]
                                                    : std::vector<size_t>{};
  };
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    const GraphNode& n = graph.nodes[k];
    std::vector<size_t>& out = node_sources[k];
    switch (n.kind) {
      case OpKind::Conv2d: {
        const size_t id = src.of(n.module);
        const int64_t groups = n.attrs.size() > 6 ? n.attrs[6] : 1;
        const std::vector<size_t> in = input_sources(n, 0);
        const int64_t in_ch = n.input_shapes.at(0).at(1), out_ch = n.shape.at(1);
        if (groups > 1 && groups == in_ch && groups == out_ch) {
          for (size_t s : in) src.unite(id, s);  // depthwise: output channel c is input channel c
        } else if (groups > 1) {
          src.need[id] = std::lcm(src.need[id], groups);
          for (size_t s : in) src.need[s] = std::lcm(src.need[s], groups);
        }
        out = {id};
        break;
      }
      case OpKind::Linear:
      case OpKind::Embedding:
        out = {src.of(n.module)};
        break;
      case OpKind::Cat: {
        const int64_t dim = n.attrs.empty() ? 0 : n.attrs[0];
        if (dim == channel_dim(n.shape)) break;  // concatenated channels: nothing tied
        std::vector<size_t> tied;
        for (size_t i = 0; i < n.inputs.size(); ++i)
          for (size_t s : input_sources(n, i)) tied.push_back(s);
        for (size_t s : tied) src.unite(tied.front(), s);
        // The result carries no sources on (NNI: its shape differs from its inputs', which ends the
        // search there; test_channel_dependency's PatternA keeps {conv1, conv2} and {conv3, conv4}
        // apart although their cats are added).
        break;
      }
      default:
        if (is_elementwise_binary(n.kind)) {
          // Inputs with the output's channel count are the same channels; a broadcast one is not.
          for (size_t i = 0; i < n.inputs.size(); ++i)
            if (n.input_shapes[i].size() == n.shape.size() && channels(n.input_shapes[i]) == channels(n.shape))
              for (size_t s : input_sources(n, i)) out.push_back(s);
          for (size_t s : out) src.unite(out.front(), s);
        } else if (passes_channels(n.kind) && !n.inputs.empty() && n.input_shapes[0].size() == n.shape.size() &&
                   channels(n.input_shapes[0]) == channels(n.shape)) {
          out = input_sources(n, 0);
          if (n.kind == OpKind::BatchNorm || n.kind == OpKind::LayerNorm)
            norm_sources[n.module].insert(out.begin(), out.end());
        }
    }
  }
  for (auto& [norm, sources] : norm_sources)
    for (size_t s : sources) src.unite(*sources.begin(), s);

  // Sets in model order: members sorted by their position in named_modules().
  std::map<std::string, size_t> order;
  for (const auto& m : config::list_modules(model)) order.emplace(m.name, order.size());
  auto position = [&](const std::string& name) {
    auto it = order.find(name);
    return it == order.end() ? order.size() : it->second;
  };
  std::map<size_t, std::vector<std::string>> by_root;
  std::map<size_t, int64_t> root_block;
  for (size_t i = 0; i < src.module.size(); ++i) {
    const size_t r = src.find(i);
    by_root[r].push_back(src.module[i]);
    root_block[r] = std::lcm(root_block.count(r) ? root_block[r] : 1, src.need[i]);
  }
  ChannelDependencies deps;
  std::vector<std::pair<size_t, std::vector<std::string>>> sets;
  for (auto& [root, members] : by_root) {
    std::sort(members.begin(), members.end(),
              [&](const std::string& a, const std::string& b) { return position(a) < position(b); });
    sets.emplace_back(root, members);
  }
  std::sort(sets.begin(), sets.end(),
            [&](const auto& a, const auto& b) { return position(a.second.front()) < position(b.second.front()); });
  std::map<size_t, size_t> set_of_root;
  for (auto& [root, members] : sets) {
    set_of_root[root] = deps.sets.size();
    for (const std::string& m : members) {
      deps.set_of[m] = deps.sets.size();
      if (root_block[root] > 1) deps.block[m] = root_block[root];
    }
    deps.sets.push_back(members);
  }
  for (auto& [norm, sources] : norm_sources) {
    if (sources.empty() || deps.set_of.count(norm)) continue;
    const size_t root = src.find(*sources.begin());
    deps.set_of[norm] = set_of_root.at(root);
    if (root_block[root] > 1) deps.block[norm] = root_block[root];
  }
  return deps;
}

boost::json::value auto_set_dependency_group_ids(nn::Module& model, const boost::json::value& config_list,
                                                 const std::vector<nn::Value>& dummy_input) {
  const std::vector<config::TargetSpace> spaces =
      config::parse_config_list(model, config_list, config::CompressorKind::Pruning);
  const boost::json::array& subs = config_list.as_array();  // parse_config_list checked the shape
  for (size_t i = 0; i < subs.size(); ++i)
    for (const auto& kv : subs[i].as_object())
      if (config::is_legacy_key(std::string(kv.key())))
        throw config::ConfigError(config::sub_config_path(i) + "." + std::string(kv.key()),
                                  "automatic dependency groups need a v3 config list (dependency_group_id is a v3 key)");
  const ChannelDependencies deps = find_channel_dependencies(model, trace(model, dummy_input));
  static const char* kSelection[] = {"op_types", "op_names", "op_names_re", "exclude_op_names",
                                     "exclude_op_types", "exclude_op_names_re", "op_partial_names"};
  boost::json::array out;
  std::set<std::pair<size_t, std::string>> done;
  for (const config::TargetSpace& s : spaces) {
    if (!done.insert({s.config_index, s.module_name}).second) continue;
    boost::json::object sub = subs.at(s.config_index).as_object();
    for (const char* key : kSelection) sub.erase(key);
    sub["op_names"] = boost::json::array{boost::json::value(s.module_name)};
    auto set = deps.set_of.find(s.module_name);
    if (set != deps.set_of.end() && !sub.contains("dependency_group_id")) {
      sub["dependency_group_id"] = deps.sets[set->second].front();
      auto block = deps.block.find(s.module_name);
      if (block != deps.block.end() && !sub.contains("internal_metric_block"))
        sub["internal_metric_block"] = block->second;
    }
    out.push_back(std::move(sub));
  }
  return out;
}

}  // namespace shrink::compression
