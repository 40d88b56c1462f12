#include "examples/compress/bundle.h"

#include <boost/json.hpp>

#include "compression/quantization/calibration_io.h"
#include "framework/io/safetensors.h"
#include "models/model_file.h"

namespace shrink::cli {

namespace {
const char* kMask = "mask:";
const char* kCalibration = "calibration:";
const char* kCalibrationMeta = "shrink.calibration";
}  // namespace

void save_bundle(const std::string& path, nn::Module& model, const std::string& zoo_name,
                 const compression::Masks& masks, const compression::CalibrationConfig& calibration) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(name, t);
  for (const auto& [key, m] : masks) tensors.emplace_back(kMask + key, m);
  for (auto& t : compression::calibration_tensors(calibration, kCalibration)) tensors.push_back(std::move(t));
  std::map<std::string, std::string> meta = models::model_file_metadata(model, zoo_name);
  if (!calibration.empty()) meta[kCalibrationMeta] = boost::json::serialize(compression::calibration_json(calibration));
  io::save_safetensors(path, tensors, meta);
}

BundleAttachments load_bundle_attachments(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  BundleAttachments out;
  std::map<std::string, Tensor> calibration_tensors;
  for (const auto& [name, t] : f.tensors) {
    if (name.rfind(kMask, 0) == 0) out.masks.emplace(name.substr(std::string(kMask).size()), t);
    else if (name.rfind(kCalibration, 0) == 0) calibration_tensors.emplace(name, t);
  }
  auto meta = f.metadata.find(kCalibrationMeta);
  if (meta != f.metadata.end()) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(meta->second, ec);
    SHRINK_CHECK(!ec, path, ": __metadata__.", kCalibrationMeta, " is not JSON (", ec.message(), ")");
    out.calibration = compression::calibration_from_tensors(v, calibration_tensors, kCalibration, path,
                                                            path + " (__metadata__." + kCalibrationMeta + ")");
  } else {
    SHRINK_CHECK(calibration_tensors.empty(), path, ": calibration tensors without __metadata__.", kCalibrationMeta);
  }
  return out;
}

}  // namespace shrink::cli
