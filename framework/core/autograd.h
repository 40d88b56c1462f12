// Dynamic tape autograd: every differentiable op result owns a Node holding its inputs and a
// backward closure (micrograd style). Nodes carry an OpKind and the module scope they ran in, so
// later passes (pruning speedup, dependency groups) can read the graph without string matching.
#pragma once
#include <functional>
#include <ostream>
#include <memory>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink {

enum class OpKind : uint16_t {
  Leaf,
  Add, Sub, Mul, Div, Neg, Exp, Log, Sqrt, Pow, PowScalar, Abs, Clamp, Sign, Round,
  AddScalar, MulScalar,
  MatMul, Linear, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm,
  BatchNormRelu, LayerNorm,
  Relu, Relu6, Gelu, Sigmoid, Tanh, Softmax, LogSoftmax,
  CrossEntropy, NllLoss, MseLoss, KlDiv, Embedding, Dropout,
  Reshape, Permute, Slice, Cat, Stack, Expand,
  Sum, Mean, Norm, Max, Min, Where, MaskedFill, Copy, ToDevice, Mask, FakeQuant,
  Custom,
};
const char* op_kind_name(OpKind k);
inline std::ostream& operator<<(std::ostream& os, OpKind k) { return os << op_kind_name(k); }

struct Node {
  OpKind kind = OpKind::Custom;
  const void* scope = nullptr;     // innermost nn::Module running when the op was recorded
  std::vector<Tensor> inputs;      // differentiable inputs, in the op's argument order
  std::vector<int64_t> attrs;      // op attributes a graph pass may need (dims, strides, ...)
  // Given d(loss)/d(output), returns d(loss)/d(input_i) per input (undefined = no gradient).
  std::function<std::vector<Tensor>(const Tensor& grad_output)> backward;
  // Weak link to the output, so passes can read its shape; the output owns the node.
  std::weak_ptr<TensorImpl> output;
  GradHooks grad_hooks;  // run on the incoming gradient (Tensor::register_hook)
  // The backward pass's marks, so that a pass needs no hash tables: which pass reached the node
  // and its position in that pass's order (a nested pass restores the marks it overwrote).
  uint64_t visited_by = 0;
  size_t pass_slot = 0;
};

// Gradient recording switch (thread local), as torch.no_grad().
struct GradMode {
  static bool enabled();
  static void set_enabled(bool on);
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Anomaly detection (torch.autograd.detect_anomaly), thread local: while on, every op that records
// a node checks its output, and every backward its input gradients, for NaN/Inf; the first one
// throws NonFiniteError naming the op, its module scope and the pass. It costs one min/max pass over
// every value (roughly a tenth to a half of an op's own time), so it is meant for locating a fault.
struct AnomalyMode {
  static bool enabled();
  static void set_enabled(bool on);
};

class AnomalyGuard {
 public:
  explicit AnomalyGuard(bool on = true) : prev_(AnomalyMode::enabled()) { AnomalyMode::set_enabled(on); }
  ~AnomalyGuard() { AnomalyMode::set_enabled(prev_); }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool prev_;
};

class NonFiniteError : public Error {
 public:
  NonFiniteError(OpKind kind, const void* scope, bool backward, const std::string& what)
      : Error(what), kind(kind), scope(scope), backward(backward) {}
  OpKind kind;
  const void* scope;  // the nn::Module the op ran in (null outside any)
  bool backward;      // found in the gradient an op's backward produced
};

// The module scope stack: nn::Module::operator() pushes itself while its forward runs.
struct ModuleScope {
  static const void* current();
  explicit ModuleScope(const void* module);
  ~ModuleScope();
  ModuleScope(const ModuleScope&) = delete;
  ModuleScope& operator=(const ModuleScope&) = delete;

 private:
  const void* prev_;
};

// True when grad mode is on and any of `inputs` requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Attaches a node to `output` (marking it as requiring grad). Call only when needs_grad(...).
void record(Tensor& output, OpKind kind, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward,
            std::vector<int64_t> attrs = {});

// Runs `hooks` on a gradient in order (an undefined result keeps the gradient).
Tensor run_grad_hooks(const GradHooks& hooks, Tensor g);

// Runs backward from `root` with seed gradient `grad` (ones for a scalar when undefined).
void run_backward(const Tensor& root, const Tensor& grad);

}  // namespace shrink
