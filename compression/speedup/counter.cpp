// The counter (nni-semantics §7.3): parameters and per-sample MACs of the Conv2d and Linear
// layers of one traced forward, dense and masked (speedup.h declares it; the speedup report uses it).
#include "compression/speedup/speedup.h"

#include "framework/ops/ops.h"

namespace shrink::compression {

namespace {
// Output positions per sample a weight element is used at: H*W of a conv output, the rows of a
// Linear's input other than the batch. 0 for other ops.
int64_t uses_per_weight(const GraphNode& n) {
  if (n.kind == OpKind::Conv2d && n.shape.size() == 4) return n.shape[2] * n.shape[3];
  if (n.kind == OpKind::Linear) {
    int64_t rows = 1;
    for (size_t d = 1; d + 1 < n.shape.size(); ++d) rows *= n.shape[d];
    return rows;
  }
  return 0;
}

int64_t nonzeros(const Tensor& mask) {
  int64_t n = 0;
  for (float v : mask.to(Device::CPU).to_vector()) n += v != 0.f;
  return n;
}
}  // namespace

int64_t count_macs(const Graph& graph) {
  int64_t macs = 0;
  for (const GraphNode& n : graph.nodes)
    if (n.input_shapes.size() >= 2) macs += uses_per_weight(n) * shape_numel(n.input_shapes[1]);
  return macs;
}

std::vector<LayerCount> count_layers(nn::Module& model, const Graph& graph, const Masks& masks) {
  std::vector<LayerCount> out;
  std::map<std::string, size_t> row;
  for (const GraphNode& n : graph.nodes) {
    const int64_t uses = uses_per_weight(n);
    if (uses == 0 || n.input_shapes.size() < 2) continue;
    auto [it, fresh] = row.emplace(n.module, out.size());
    if (fresh) {
      LayerCount c;
      c.module = n.module;
      c.type = n.kind == OpKind::Conv2d ? "Conv2d" : "Linear";
      auto m = model.find(n.module);
      for (const char* name : {"weight", "bias"}) {
        const Tensor p = m ? m->param(name) : Tensor();
        if (!p.defined()) continue;
        c.params += p.numel();
        auto mk = masks.find(n.module + "." + name);
        c.masked_params += mk == masks.end() ? p.numel() : nonzeros(expand(mk->second, p.shape()));
      }
      out.push_back(c);
    }
    LayerCount& c = out[it->second];
    const int64_t weights = shape_numel(n.input_shapes[1]);
    auto mk = masks.find(n.module + ".weight");
    c.macs += uses * weights;
    c.masked_macs += uses * (mk == masks.end() ? weights : nonzeros(mk->second));
  }
  return out;
}

}  // namespace shrink::compression
