// Pruning speedup (nni-semantics §7, DECISIONS rows 17-18): a model with channel masks becomes a
// physically smaller model that computes what the masked model computes.
//
// Exact propagation on the traced graph (graph.h), not inference on random batches:
//   1. The output channels a Conv2d / Linear keeps are the rows its weight mask keeps (a row with
//      any unmasked element); channel-dependency sets (dependency.h) keep the union of their
//      members' channels, so residual sums stay aligned (NNI's fix_mask_conflict).
//   2. Kept channels flow forward through the graph: activations, pooling, dropout and batch
//      norm keep them; add/sub/mul/div keep the union; cat along the channels concatenates them;
//      flatten of [N, C, H, W] turns channel c into features c*H*W .. (c+1)*H*W - 1.
//   3. A removed channel is not always zero: a bias, a batch norm's shift or an activation of
//      either leaves a per-channel constant. The constant is carried along the graph and folded
//      into the bias of the layer that consumes it. The fold is exact for a Linear and for a
//      convolution without padding; a padded convolution sees zeros at the border instead, so
//      there the sped-up model differs, and the report names the layer and the measured deviation
//      (DECISIONS 18). Pruning the batch norm with its convolution (one dependency group) removes
//      the constant.
//   4. A MultiheadAttention loses whole heads (attention_heads.h): its projections keep the
//      features of the heads that stay, and a removed head's constant context is folded into
//      out_proj's bias.
//   5. Layers are then shrunk in place (parameters, buffers and the size fields), masks baked into
//      the weights that remain.
// Before anything changes, a pre-flight walks the whole graph and refuses, with every reason, any
// op it cannot carry removed channels through (DECISIONS 17); ops whose inputs keep every channel
// are always fine.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compression/pruning/pruner.h"
#include "compression/speedup/graph.h"

namespace shrink::compression {

// A MultiheadAttention's row gives its query width as "in" and its head count as "out".
struct LayerChange {
  std::string module, type;
  int64_t in_before = 0, in_after = 0, out_before = 0, out_after = 0;  // channels / features
};

// Per Conv2d / Linear layer: parameters (weight and bias) and per-sample MACs, dense and masked
// (counting only unmasked weights, unlike NNI's counter, which counts whole output channels). A
// layer run several times counts its MACs each time and its parameters once. The sped-up model's
// counts are count_layers of the sped-up model.
struct LayerCount {
  std::string module, type;
  int64_t params = 0, macs = 0;
  int64_t masked_params = 0, masked_macs = 0;
};
struct SpeedupReport {
  std::vector<LayerChange> layers;  // every Conv2d, Linear and norm whose size changed, in model order
  int64_t params_before = 0, params_after = 0;
  int64_t macs_before = 0, macs_after = 0;  // per sample, Conv2d and Linear
  // max |sped-up - masked| / max |masked| over the model's output on the check input.
  double deviation = 0.0;
  // Layers where a folded constant met zero padding (the fold is exact only in the interior).
  std::vector<std::string> inexact;
  // Masked weights that stay (as zeros) although their channels look removable, and why.
  std::vector<std::string> notes;
  // Per Conv2d / Linear layer: dense and masked counts before, and the sped-up model's (its
  // "params"/"macs"; masked = dense there), in graph order.
  std::vector<LayerCount> counts_before, counts_after;
};

// The ops the pre-flight would refuse, one line each ("node 12 Reshape in 'features': ..."); empty
// when speedup can run.
std::vector<std::string> speedup_preflight(nn::Module& model, const Masks& masks, const std::vector<nn::Value>& input);

// Shrinks `model` in place (eval mode is used and the mode restored). `input` is used for the trace
// and for measuring the deviation. Throws, leaving the model untouched, when the pre-flight refuses.
SpeedupReport speedup_model(nn::Module& model, const Masks& masks, const std::vector<nn::Value>& input);

// Per-sample multiply-accumulates of the Conv2d and Linear layers of one traced forward (bias
// additions not counted, as NNI's counter).
int64_t count_macs(const Graph& graph);

std::vector<LayerCount> count_layers(nn::Module& model, const Graph& graph, const Masks& masks = {});

}  // namespace shrink::compression
