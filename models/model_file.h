// Model files: a sped-up (or any) zoo model as one safetensors file that loads without the
// original layer sizes — the state dict under the model's own names, and in "__metadata__":
//   "shrink.model"        the zoo model it was built as ("vgg_small", ...)
//   "shrink.architecture" JSON: {"layers": {"<module>": {"type": "Conv2d", "in_channels": ..,
//                         "out_channels": .., "groups": ..} | {"type": "Linear", "in_features": ..,
//                         "out_features": ..} | {"type": "BatchNorm2d", "num_features": ..} |
//                         {"type": "MultiheadAttention", "embed_dim": .., "num_heads": .., "head_dim": ..} |
//                         {"type": "LayerNorm", "features": .., "removed": .., "removed_mean": ..,
//                         "removed_m2": ..} | {"type": "Embedding", "num_embeddings": ..,
//                         "embedding_dim": ..}}}
// Loading builds the zoo model, resizes those layers, then loads the tensors strictly. Tensors
// whose name holds a ':' are attachments of a bundle (its masks and calibration, e.g.
// "mask:conv1.weight"); the model loader leaves them to whoever wrote them.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "framework/nn/module.h"

namespace shrink::models {

// Written atomically (temp file + rename).
void save_model_file(const std::string& path, nn::Module& model, const std::string& zoo_name);
// The "__metadata__" a model file carries (for writers that add attachments and metadata of their own).
std::map<std::string, std::string> model_file_metadata(nn::Module& model, const std::string& zoo_name);
// Errors name the file and what is wrong (not a model file, unknown model, a layer it lacks).
// `zoo_name`, when given, receives the zoo model the file was built as.
std::shared_ptr<nn::Module> load_model_file(const std::string& path, std::string* zoo_name = nullptr);

}  // namespace shrink::models
