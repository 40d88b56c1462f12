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

}  // namespace shrink::compression
