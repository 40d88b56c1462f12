#include "framework/core/autograd.h"

#include <atomic>
#include <unordered_map>

#include "framework/ops/ops.h"

namespace shrink {

const char* op_kind_name(OpKind k) {
  switch (k) {
#define CASE(x) case OpKind::x: return #x;
    CASE(Leaf) CASE(Add) CASE(Sub) CASE(Mul) CASE(Div) CASE(Neg) CASE(Exp) CASE(Log) CASE(Sqrt)
    CASE(Pow) CASE(PowScalar) CASE(Abs) CASE(Clamp) CASE(Sign) CASE(Round) CASE(AddScalar)
    CASE(MulScalar) CASE(MatMul) CASE(Linear) CASE(Conv2d) CASE(MaxPool2d) CASE(AvgPool2d)
    CASE(AdaptiveAvgPool2d) CASE(BatchNorm) CASE(BatchNormRelu)
    CASE(LayerNorm) CASE(Relu) CASE(Relu6) CASE(Gelu)
    CASE(Sigmoid) CASE(Tanh) CASE(Softmax) CASE(LogSoftmax) CASE(CrossEntropy) CASE(NllLoss)
    CASE(MseLoss) CASE(KlDiv) CASE(Embedding) CASE(Dropout) CASE(Reshape) CASE(Permute)
    CASE(Slice) CASE(Cat) CASE(Stack) CASE(Expand) CASE(Sum) CASE(Mean) CASE(Norm) CASE(Max) CASE(Min)
    CASE(Where) CASE(MaskedFill) CASE(Copy) CASE(ToDevice) CASE(Mask) CASE(FakeQuant)
    CASE(Custom)
#undef CASE
  }
  return "?";
}

namespace {
thread_local bool g_grad_enabled = true;
thread_local bool g_anomaly = false;
thread_local const void* g_scope = nullptr;
}  // namespace

bool GradMode::enabled() { return g_grad_enabled; }
bool AnomalyMode::enabled() { return g_anomaly; }
void AnomalyMode::set_enabled(bool on) { g_anomaly = on; }
void GradMode::set_enabled(bool on) { g_grad_enabled = on; }

const void* ModuleScope::current() { return g_scope; }
ModuleScope::ModuleScope(const void* module) : prev_(g_scope) { g_scope = module; }
ModuleScope::~ModuleScope() { g_scope = prev_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& output, OpKind kind, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward,
            std::vector<int64_t> attrs) {
  auto node = std::make_shared<Node>();
  node->kind = kind;
  node->scope = g_scope;
  node->inputs = std::move(inputs);
  node->attrs = std::move(attrs);
  node->backward = std::move(backward);
  node->output = output.impl_ptr();
  output.set_grad_fn(std::move(node));
  if (g_anomaly && output.dtype() == DType::F32 && !all_finite(output))
    throw NonFiniteError(kind, g_scope, false,
                         std::string("non-finite value (NaN or Inf) in the output of ") + op_kind_name(kind) + " " +
                             output.describe());
}

namespace {

// The marks one backward pass puts on the nodes it reaches, given back when it ends (also by an
// exception): a backward run from a gradient hook inside another pass may reach the same nodes.
class PassMarks {
 public:
  explicit PassMarks(uint64_t pass) : pass_(pass) { saved_.reserve(32); }
  PassMarks(const PassMarks&) = delete;
  PassMarks& operator=(const PassMarks&) = delete;
  ~PassMarks() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      it->node->visited_by = it->visited_by;
      it->node->pass_slot = it->pass_slot;
    }
  }
  // Marks `node` on its first visit; false when this pass had already reached it.
  bool visit(Node* node) {
    if (node->visited_by == pass_) return false;
    saved_.push_back({node, node->visited_by, node->pass_slot});
    node->visited_by = pass_;
    return true;
  }
  bool reached(const Node* node) const { return node->visited_by == pass_; }

 private:
  struct Saved {
    Node* node;
    uint64_t visited_by;
    size_t pass_slot;
  };
  uint64_t pass_;
  std::vector<Saved> saved_;
};

// Reverse topological order of the nodes reachable from `root` (iterative DFS); each node's
// pass_slot is its position in the order.
std::vector<Node*> topo_order(Node* root, PassMarks& marks) {
  std::vector<Node*> order;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  marks.visit(root);
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.grad_fn()) {
        Node* child = in.grad_fn().get();
        if (marks.visit(child)) stack.push_back({child, 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  std::reverse(order.begin(), order.end());  // root first
  for (size_t i = 0; i < order.size(); ++i) order[i]->pass_slot = i;
  return order;
}

Tensor accumulate(const Tensor& a, const Tensor& b) { return a.defined() ? add(a, b) : b; }

// Leaf gradients of one pass. A leaf without hooks accumulates into grad() at once; a hooked one
// collects the pass's total first, so its hooks see that total (as PyTorch's). The hooks run as
// soon as the last of the pass's contributions to the leaf is in (expect() counts them before the
// pass), so work in a hook (e.g. a data-parallel all-reduce) overlaps the rest of backward; a leaf
// whose count is not reached (a branch that produced no gradient) is finished at the end. Either
// order is fixed by the graph, so the sequence of hook calls is deterministic.
class LeafGrads {
 public:
  // Counts the edges into hooked leaves of the nodes in `order`.
  void expect(const std::vector<Node*>& order) {
    for (const Node* node : order)
      for (const Tensor& in : node->inputs)
        if (in.defined() && !in.grad_fn() && in.requires_grad() && !in.impl()->grad_hooks.empty()) {
          auto [it, fresh] = index_.emplace(in.impl(), pending_.size());
          if (fresh) pending_.push_back({in, Tensor(), 0});
          ++pending_[it->second].remaining;
        }
  }
  void add(const Tensor& leaf, const Tensor& g) {
    if (leaf.impl()->grad_hooks.empty()) {
      leaf.set_grad(accumulate(leaf.grad(), g));
      return;
    }
    auto [it, fresh] = index_.emplace(leaf.impl(), pending_.size());
    // A leaf expect() did not count (the backward root itself, or one whose first hook was
    // registered during this pass) is delivered when the pass ends.
    if (fresh) pending_.push_back({leaf, Tensor(), kAtEnd});
    Pending& p = pending_[it->second];
    p.grad = accumulate(p.grad, g);
    if (p.remaining != kAtEnd && --p.remaining == 0) deliver(p);
  }
  // A pass's gradient for a counted leaf can only arrive through an edge that expect() counted,
  // so `remaining` reaches 0 exactly when the last one is in; leaves still waiting here had some
  // edge that carried no gradient.
  void finish() {
    for (Pending& p : pending_)
      if (p.grad.defined()) deliver(p);
  }

 private:
  static constexpr int64_t kAtEnd = -1;
  struct Pending {
    Tensor leaf, grad;
    int64_t remaining;
  };
  static void deliver(Pending& p) {
    Tensor hooked = run_grad_hooks(p.leaf.impl()->grad_hooks, std::move(p.grad));
    p.grad = Tensor();
    p.leaf.set_grad(accumulate(p.leaf.grad(), hooked));
  }
  std::unordered_map<const TensorImpl*, size_t> index_;
  std::vector<Pending> pending_;
};

}  // namespace

Tensor run_grad_hooks(const GradHooks& hooks, Tensor g) {
  for (const auto& [id, hook] : hooks) {
    Tensor r = hook(g);
    if (r.defined()) {
      SHRINK_CHECK(r.shape() == g.shape(), "gradient hook ", id, " returned ", r.describe(), " for a gradient ",
                   g.describe());
      g = std::move(r);
    }
  }
  return g;
}

void run_backward(const Tensor& root, const Tensor& grad) {
  SHRINK_CHECK(root.defined(), "backward: tensor is undefined");
  SHRINK_CHECK(root.requires_grad(), "backward: tensor ", root.describe(),
               " does not require grad");
  Tensor seed = grad;
  if (!seed.defined()) {
    SHRINK_CHECK(root.numel() == 1, "backward: implicit gradient needs a scalar, got ",
                 root.describe());
    seed = Tensor::ones(root.shape(), DType::F32, root.device());
  }
  SHRINK_CHECK(seed.shape() == root.shape(), "backward: gradient ", seed.describe(),
               " for output ", root.describe());
  NoGradGuard no_grad;
  LeafGrads leaves;
  if (!root.grad_fn()) {  // a leaf
    leaves.add(root, seed);
    leaves.finish();
    return;
  }
  static std::atomic<uint64_t> passes{0};
  PassMarks marks(++passes);
  std::vector<Node*> order = topo_order(root.grad_fn().get(), marks);
  leaves.expect(order);
  std::vector<Tensor> grads(order.size());  // by pass_slot
  grads.front() = seed;
  for (size_t i = 0; i < order.size(); ++i) {
    Node* node = order[i];
    Tensor g = std::move(grads[i]);
    if (!g.defined()) continue;  // no gradient reached this node
    if (!node->grad_hooks.empty()) g = run_grad_hooks(node->grad_hooks, std::move(g));
    SHRINK_CHECK(node->backward, "backward: graph of ", op_kind_name(node->kind),
                 " was already freed (backward called twice?)");
    std::vector<Tensor> in_grads = node->backward(g);
    SHRINK_CHECK(in_grads.size() == node->inputs.size(), "backward of ",
                 op_kind_name(node->kind), ": ", in_grads.size(), " gradients for ",
                 node->inputs.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      const Tensor& gi = in_grads[i];
      if (!in.defined() || !gi.defined() || !in.requires_grad()) continue;
      if (g_anomaly && !all_finite(gi))
        throw NonFiniteError(node->kind, node->scope, true,
                             std::string("non-finite gradient (NaN or Inf) from the backward of ") +
                                 op_kind_name(node->kind) + " for its input " + std::to_string(i) + " " + gi.describe());
      SHRINK_CHECK(gi.shape() == in.shape(), "backward of ", op_kind_name(node->kind),
                   ": gradient ", gi.describe(), " for input ", i, " ", in.describe());
      if (in.grad_fn()) {
        Node* child = in.grad_fn().get();
        SHRINK_CHECK(marks.reached(child), "backward: a gradient hook changed the graph during the pass");
        Tensor& slot = grads[child->pass_slot];
        slot = accumulate(slot, gi);
      } else {
        leaves.add(in, gi);
      }
    }
    node->backward = nullptr;  // free saved tensors, as PyTorch does without retain_graph
  }
  leaves.finish();
}

}  // namespace shrink
