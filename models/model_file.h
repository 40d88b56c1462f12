// Model files: a sped-up (or any) zoo model as one safetensors file that loads without the
// original layer sizes — the state dict under the model's own names, and in "__metadata__":
//   "shrink.model"        the zoo model it was built as ("vgg_small", ...)
//   "shrink.architecture" JSON: {"layers": {"<module>": {"type": "Conv2d", "in_channels": ..,
//                         "out_channels": .., "groups": ..} | {"type": "Linear", "in_features": ..,
//                         "out_features": ..} | {"type": "BatchNorm2d", "num_features": ..}}}
// Loading builds the zoo model, resizes those layers, then loads the tensors strictly.
#pragma once
#include <memory>
#include <string>

#include "framework/nn/module.h"

namespace shrink::models {

// Written atomically (temp file + rename).
void save_model_file(const std::string& path, nn::Module& model, const std::string& zoo_name);
// Errors name the file and what is wrong (not a model file, unknown model, a layer it lacks).
std::shared_ptr<nn::Module> load_model_file(const std::string& path);

}  // namespace shrink::models
