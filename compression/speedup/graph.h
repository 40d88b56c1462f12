// Graph: one forward of a model read off the autograd tape (framework/core/autograd.h) — every
// recorded op with its kind, attributes, output shape, producer of each input and the module it ran
// in. No tracer of its own: the tape already records the op kind and the module scope, so what the
// model computes for this input is exactly what the graph holds (control flow included as taken).
//
// Only ops that depend on the model's input or its parameters are on the tape; the input is made
// to require grad for the trace, so every op downstream of it is recorded.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "framework/core/autograd.h"
#include "framework/nn/module.h"
#include "framework/nn/value.h"

namespace shrink::compression {

struct GraphNode {
  // Producer of an input: a node index, or one of these for leaves.
  static constexpr int kModelInput = -1;
  static constexpr int kParameter = -2;  // a parameter or any other leaf tensor

  OpKind kind = OpKind::Custom;
  std::string module;                 // dotted name of the module the op ran in ("" = the model)
  const nn::Module* module_ptr = nullptr;
  std::vector<int> inputs;            // per differentiable input, in the op's argument order
  std::vector<Shape> input_shapes;
  std::vector<int64_t> attrs;         // as recorded (e.g. conv strides, padding, groups; cat's dim)
  Shape shape;                        // of the output
};

struct Graph {
  std::vector<GraphNode> nodes;  // topological order: every producer before its consumers
  std::vector<int> outputs;      // the nodes giving the model's output tensors
  // Node indices that ran in `module` (by name), in order.
  std::vector<int> nodes_of(const std::string& module) const;
};

// Runs `model` once on `inputs` in eval mode (the mode is restored) with gradients recorded and
// returns its graph. The tensors in `inputs` are not modified.
Graph trace(nn::Module& model, const std::vector<nn::Value>& inputs);

}  // namespace shrink::compression
