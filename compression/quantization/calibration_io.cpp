#include "compression/quantization/calibration_io.h"

#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"

namespace shrink::compression {

namespace {
const char* const kTensorNames[] = {"scale", "zero_point", "tracked_min", "tracked_max"};

Tensor* field(TargetCalibration& c, const std::string& name) {
  if (name == "scale") return &c.scale;
  if (name == "zero_point") return &c.zero_point;
  if (name == "tracked_min") return &c.tracked_min;
  return &c.tracked_max;
}
}  // namespace

std::string calibration_sidecar_path(const std::string& path) {
  const std::string ext = ".safetensors";
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0)
    return path.substr(0, path.size() - ext.size()) + ".json";
  return path + ".json";
}

boost::json::object calibration_json(const CalibrationConfig& config) {
  boost::json::object out;
  for (const auto& [key, c] : config)
    out[key] = boost::json::object{{"module", c.module}, {"target", c.target},       {"quant_dtype", c.quant_dtype},
                                   {"quant_scheme", c.quant_scheme}, {"quant_bits", c.quant_bits},
                                   {"qmin", c.qmin},     {"qmax", c.qmax}};
  return out;
}

std::vector<std::pair<std::string, Tensor>> calibration_tensors(const CalibrationConfig& config,
                                                                const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto [key, c] : config)
    for (const char* name : kTensorNames) {
      Tensor* t = field(c, name);
      SHRINK_CHECK(t->defined(), "save_calibration: ", key, " has no ", name);
      tensors.emplace_back(prefix + key + "." + name, t->contiguous_copy());
    }
  return tensors;
}

void save_calibration(const std::string& path, const CalibrationConfig& config) {
  const std::vector<std::pair<std::string, Tensor>> tensors = calibration_tensors(config);
  const std::string meta = boost::json::serialize(calibration_json(config));
  io::write_file_atomic(calibration_sidecar_path(path), meta + "\n");
  io::save_safetensors(path, tensors, {{"shrink_calibration", meta}});
}

CalibrationConfig load_calibration(const std::string& path) {
  const std::string sidecar = calibration_sidecar_path(path);
  return parse_calibration(io::read_file(path), path, io::read_file(sidecar), sidecar);
}

namespace {
boost::json::value parse_json(const std::string& text, const std::string& where) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) fail(where, ": invalid JSON (", ec.message(), ")");
  return v;
}
}  // namespace

CalibrationConfig parse_calibration(const std::string& safetensors_bytes, const std::string& path,
                                    const std::string& sidecar_text, const std::string& sidecar) {
  const boost::json::value meta = parse_json(sidecar_text, sidecar);
  SHRINK_CHECK(meta.is_object(), sidecar, ": expected a JSON object keyed '<module>.<target>'");
  io::SafetensorsFile file = io::parse_safetensors(safetensors_bytes, path);
  if (auto m = file.metadata.find("shrink_calibration"); m != file.metadata.end())
    SHRINK_CHECK(parse_json(m->second, path + " (__metadata__.shrink_calibration)") == meta, path, " and ", sidecar,
                 " come from different saves (the tensors' own copy of the sidecar differs); save the calibration again");
  return calibration_from_tensors(meta, std::map<std::string, Tensor>(file.tensors.begin(), file.tensors.end()), "",
                                  path, sidecar);
}

CalibrationConfig calibration_from_tensors(const boost::json::value& meta, const std::map<std::string, Tensor>& tensors,
                                           const std::string& prefix, const std::string& path,
                                           const std::string& sidecar) {
  SHRINK_CHECK(meta.is_object(), sidecar, ": expected a JSON object keyed '<module>.<target>'");
  CalibrationConfig out;
  for (const auto& [key, v] : meta.as_object()) {
    const std::string k(key);
    const boost::json::object* o = v.if_object();
    SHRINK_CHECK(o, sidecar, ": '", k, "' is not an object");
    TargetCalibration c;
    try {
      c.module = std::string(o->at("module").as_string());
      c.target = std::string(o->at("target").as_string());
      c.quant_dtype = std::string(o->at("quant_dtype").as_string());
      c.quant_scheme = std::string(o->at("quant_scheme").as_string());
      c.quant_bits = static_cast<int>(o->at("quant_bits").to_number<int64_t>());
      c.qmin = o->at("qmin").to_number<float>();
      c.qmax = o->at("qmax").to_number<float>();
    } catch (const std::exception& e) {
      fail(sidecar, ": '", k, "': missing or malformed field (", e.what(), ")");
    }
    for (const char* name : kTensorNames) {
      auto it = tensors.find(prefix + k + "." + name);
      SHRINK_CHECK(it != tensors.end(), path, ": no tensor '", prefix, k, ".", name, "' (listed in ", sidecar, ")");
      SHRINK_CHECK(it->second.dtype() == DType::F32, path, ": '", prefix, k, ".", name, "' must be F32");
      *field(c, name) = it->second;
    }
    out[k] = std::move(c);
  }
  return out;
}

}  // namespace shrink::compression
