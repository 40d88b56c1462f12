#include "compression/quantization/quantizer_factory.h"

#include "compression/quantization/binary_quantizers.h"
#include "compression/quantization/histogram.h"
#include "compression/quantization/lsq_quantizer.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/quantization/qat_quantizer.h"

namespace shrink::compression {

const char* quantizer_names_help() { return "ptq | qat | lsq | lsq_plus | dorefa | bnn | naive"; }

std::unique_ptr<Quantizer> make_quantizer(const QuantizerOptions& o, Host host, const boost::json::value& cfg,
                                          train::Trainer& trainer) {
  const std::string& name = o.name;
  if (name == "ptq")
    return std::make_unique<PtqQuantizer>(std::move(host), cfg, &trainer,
                                          PtqOptions{parse_range_observer(o.observer), o.percentile, o.bias_correction});
  if (name == "qat") return std::make_unique<QATQuantizer>(std::move(host), cfg, trainer, o.start_step);
  if (name == "lsq") return std::make_unique<LsqQuantizer>(std::move(host), cfg, trainer);
  if (name == "lsq_plus") return std::make_unique<LsqPlusQuantizer>(std::move(host), cfg, trainer);
  if (name == "dorefa") return std::make_unique<DoReFaQuantizer>(std::move(host), cfg, trainer);
  if (name == "bnn") return std::make_unique<BNNQuantizer>(std::move(host), cfg, trainer);
  if (name == "naive") return std::make_unique<NaiveQuantizer>(std::move(host), cfg);
  fail("unknown quantizer '", name, "' (", quantizer_names_help(), ")");
}

namespace {

std::string granularity_of(const TargetCalibration& c, const Shape& target_shape) {
  const Shape& s = c.scale.shape();
  if (s.empty()) return "default";  // per tensor: a scalar (a per-channel scale keeps its dims)
  const bool activation = c.target.rfind("_input_", 0) == 0 || c.target.rfind("_output_", 0) == 0;
  auto only_dim = [&](size_t d) {
    if (s.size() <= d || (activation && s.size() < 2)) return false;
    for (size_t i = 0; i < s.size(); ++i)
      if (i != d && s[i] != 1) return false;
    return true;
  };
  if (activation && only_dim(1)) return "per_channel";
  if (!activation && only_dim(0) && !target_shape.empty() && s[0] == target_shape[0]) return "out_channel";
  if (!activation && only_dim(1) && target_shape.size() > 1 && s[1] == target_shape[1]) return "in_channel";
  fail("calibration ", c.module, ".", c.target, ": scale ", shape_str(s), " is not a granularity a quantizer writes");
}

}  // namespace

std::unique_ptr<Quantizer> quantizer_from_calibration(std::shared_ptr<nn::Module> model,
                                                      const CalibrationConfig& calibration,
                                                      const std::vector<nn::Value>& probe) {
  boost::json::array config;
  for (const auto& [key, c] : calibration) {
    std::shared_ptr<nn::Module> m = model->find(c.module);
    SHRINK_CHECK(m != nullptr, "calibration ", key, ": the model has no module '", c.module, "'");
    Shape shape;
    if (m->has_parameter(c.target) || m->has_buffer(c.target)) shape = m->param(c.target).shape();
    config.push_back(boost::json::object{{"op_names", boost::json::array{boost::json::string(c.module)}},
                                         {"target_names", boost::json::array{boost::json::string(c.target)}},
                                         {"quant_dtype", c.quant_dtype},
                                         {"quant_scheme", c.quant_scheme},
                                         {"granularity", granularity_of(c, shape)}});
  }
  auto q = std::make_unique<PtqQuantizer>(model, config);
  q->calibrate(probe);
  q->finish_calibration();
  q->update_calibration_config(calibration);
  return q;
}

}  // namespace shrink::compression
