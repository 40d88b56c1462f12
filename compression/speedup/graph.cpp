#include "compression/speedup/graph.h"

#include <unordered_map>
#include <unordered_set>

#include "framework/nn/fusion.h"

namespace shrink::compression {

std::vector<int> Graph::nodes_of(const std::string& module) const {
  std::vector<int> out;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].module == module) out.push_back(static_cast<int>(i));
  return out;
}

namespace {

// Restores the model's mode and the grad mode however tracing ends.
struct TraceScope {
  nn::Module& model;
  bool was_training, grad_was_enabled;
  ~TraceScope() {
    model.train(was_training);
    GradMode::set_enabled(grad_was_enabled);
  }
};

void collect_tensors(const nn::Value& v, std::vector<Tensor>& out) {
  if (v.is_tensor()) out.push_back(v.tensor());
  else if (v.is_list())
    for (const auto& item : v.items()) collect_tensors(item, out);
}

}  // namespace

Graph trace(nn::Module& model, const std::vector<nn::Value>& inputs) {
  std::unordered_map<const nn::Module*, std::string> names;
  for (auto& [name, m] : model.named_modules()) names.emplace(m.get(), name);

  std::vector<nn::Value> traced;
  std::unordered_set<const TensorImpl*> input_impls;
  for (const nn::Value& v : inputs) {
    if (v.is_tensor() && v.tensor().dtype() == DType::F32) {
      Tensor t = v.tensor().detach().contiguous_copy().set_requires_grad(true);
      input_impls.insert(t.impl());
      traced.emplace_back(t);
    } else {
      traced.push_back(v);
    }
  }
  TraceScope scope{model, model.is_training(), GradMode::enabled()};
  nn::FusionGuard unfused(false);  // every module's own ops on the tape, as the model defines them
  model.eval();
  GradMode::set_enabled(true);
  nn::Value out = model(traced);
  std::vector<Tensor> roots;
  collect_tensors(out, roots);

  // Post-order walk from the outputs: producers first.
  Graph g;
  std::unordered_map<const Node*, int> index;
  std::vector<std::pair<const Node*, size_t>> stack;
  auto visit = [&](const Node* root) {
    if (!root || index.count(root)) return;
    stack.push_back({root, 0});
    std::unordered_set<const Node*> on_stack{root};
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        const Tensor& in = node->inputs[next++];
        const Node* child = in.defined() ? in.grad_fn().get() : nullptr;
        if (child && !index.count(child) && on_stack.insert(child).second) stack.push_back({child, 0});
        continue;
      }
      GraphNode n;
      n.kind = node->kind;
      auto it = names.find(static_cast<const nn::Module*>(node->scope));
      n.module_ptr = static_cast<const nn::Module*>(node->scope);
      n.module = it != names.end() ? it->second : "";
      n.attrs = node->attrs;
      for (const Tensor& in : node->inputs) {
        n.input_shapes.push_back(in.defined() ? in.shape() : Shape{});
        if (in.defined() && in.grad_fn()) n.inputs.push_back(index.at(in.grad_fn().get()));
        else n.inputs.push_back(in.defined() && input_impls.count(in.impl()) ? GraphNode::kModelInput
                                                                              : GraphNode::kParameter);
      }
      if (auto o = node->output.lock()) n.shape = o->shape;
      index[node] = static_cast<int>(g.nodes.size());
      g.nodes.push_back(std::move(n));
      stack.pop_back();
    }
  };
  for (const Tensor& r : roots) {
    visit(r.grad_fn().get());
    g.outputs.push_back(r.grad_fn() ? index.at(r.grad_fn().get()) : GraphNode::kModelInput);
  }
  return g;
}

}  // namespace shrink::compression
