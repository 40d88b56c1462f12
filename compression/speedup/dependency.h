// Channel dependencies (nni-semantics §3.3, NNI's auto_set_dependency_group_ids), found on a traced
// graph (graph.h): output channels of different layers that must be pruned together, and the
// channel blocks a grouped convolution imposes.
//
// Every Conv2d, Linear and Embedding the forward reaches starts a channel source. Channels then
// pass through ops that keep the channel axis (activations, pooling, norms, dropout, masking, fake
// quantization) and
//   - elementwise add/sub/mul/div of two sources with the same channel count ties them (residuals);
//   - cat along another axis than the channels ties its inputs (they are the same channels), and
//     ends them there, as NNI (whose search stops where a shape changes);
//   - a depthwise convolution (groups = in = out channels) ties its output to its input;
//   - a grouped convolution with g groups needs blocks of g channels from itself and from the
//     layers that feed it (internal_metric_block = the lcm of every g a layer meets);
//   - any other op (reshape, flatten, reductions, cat along the channels, slicing...) ends the
//     channels: nothing after it is tied to what came before.
// Norm modules (BatchNorm, LayerNorm) follow the source they normalise.
//
// The channel axis is dim 1 of rank >= 4 values ([N, C, H, W]) and the last dim otherwise.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "compression/speedup/graph.h"

namespace shrink::compression {

struct ChannelDependencies {
  // Sets of module names whose output channels are tied, singletons included, each in model order;
  // the sets ordered by their first member.
  std::vector<std::vector<std::string>> sets;
  std::map<std::string, size_t> set_of;    // module -> index into sets (norms: their source's set)
  std::map<std::string, int64_t> block;    // module -> channel block (> 1 only), equal within a set
};

ChannelDependencies find_channel_dependencies(const nn::Module& model, const Graph& graph);

// NNI's auto_set_dependency_group_ids: the config list split into one sub-config per selected
// module (op_names: [module], every other key kept) with dependency_group_id (the name of the set's
// first module) and internal_metric_block (when > 1) filled in from one forward of `dummy_input`.
// A sub-config's own dependency_group_id is kept. Throws config::ConfigError for an invalid list,
// and for a legacy (v1/v2) list, which cannot hold these v3 keys.
boost::json::value auto_set_dependency_group_ids(nn::Module& model, const boost::json::value& config_list,
                                                 const std::vector<nn::Value>& dummy_input);

}  // namespace shrink::compression
