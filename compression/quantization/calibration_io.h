// Calibration on disk: a safetensors file with, per target, "<module>.<target>.scale",
// ".zero_point", ".tracked_min" and ".tracked_max" (F32, the target's shrunk shape: per channel
// where the granularity says so, a scalar per tensor), and a JSON sidecar beside it
// ("<file without .safetensors>.json") with each target's quant_dtype, quant_scheme, quant_bits,
// qmin and qmax. Both files are replaced atomically, and the safetensors metadata carries a copy
// of the sidecar ("shrink_calibration"): a crash between the two writes leaves a pair that
// load_calibration refuses as coming from different saves, rather than one it misreads.
#pragma once
#include <boost/json.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "compression/quantization/quantizer.h"

namespace shrink::compression {

std::string calibration_sidecar_path(const std::string& safetensors_path);
boost::json::object calibration_json(const CalibrationConfig& config);
void save_calibration(const std::string& path, const CalibrationConfig& config);
// Reads both files back (an error names the file and the key that is missing or malformed).
CalibrationConfig load_calibration(const std::string& path);
// The same from the two files' contents (`path` and `sidecar` name them in errors).
// The tensors of a calibration ("<prefix><module>.<target>.scale", ...) and the way back, for
// files that hold a calibration beside other tensors (the `shrink compress` bundle). `meta` is
// calibration_json's object; `path` and `sidecar` name where tensors and meta came from in errors.
std::vector<std::pair<std::string, Tensor>> calibration_tensors(const CalibrationConfig& config,
                                                                const std::string& prefix = "");
CalibrationConfig calibration_from_tensors(const boost::json::value& meta, const std::map<std::string, Tensor>& tensors,
                                           const std::string& prefix, const std::string& path,
                                           const std::string& sidecar);
CalibrationConfig parse_calibration(const std::string& safetensors_bytes, const std::string& path,
                                    const std::string& sidecar_text, const std::string& sidecar);

}  // namespace shrink::compression
