// The export bundle of `shrink compress`: one safetensors file that is a model file
// (models/model_file.h: weights under the model's names, architecture in __metadata__), so
// `shrink eval --model-file` and `shrink infer --model-file` load it as it is, with attachments
// the model loader skips (names holding ':'):
//   "mask:<module>.<target>"                      the masks (F32 0/1; the weights hold them baked)
//   "calibration:<module>.<target>.scale", ...    the calibration's tensors, and in __metadata__
//   "shrink.calibration"                          its JSON (calibration_io.h's sidecar)
#pragma once
#include <string>

#include "compression/pruning/pruner.h"
#include "compression/quantization/quantizer.h"
#include "framework/nn/module.h"

namespace shrink::cli {

void save_bundle(const std::string& path, nn::Module& model, const std::string& zoo_name,
                 const compression::Masks& masks, const compression::CalibrationConfig& calibration);

struct BundleAttachments {
  compression::Masks masks;
  compression::CalibrationConfig calibration;
};
// The masks and calibration of a bundle (empty when it has none); errors name the file.
BundleAttachments load_bundle_attachments(const std::string& path);

}  // namespace shrink::cli
