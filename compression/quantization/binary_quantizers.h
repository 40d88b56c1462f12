// The quantizers with fixed ranges (nni-semantics §4.2, §4.4):
//   DoReFaQuantizer (Zhou et al. 2016): weights through tanh into [0, 1] and back
//     (dorefa_clamp_round_weight), outputs clamped to [0, 1] (dorefa_clamp_round_output), both
//     with the fixed affine range [0, 1]: s = 1/(qmax - qmin), z = qmin; inputs with clamp_round,
//     scale and zero point from each batch's own min/max. quant_scheme must be set; granularity is
//     not supported; outputs only of activation modules. (NNI's gradient quantization needs
//     torch >= 2 and is not part of the PyTorch 1.13 reference; not done.)
//   BNNQuantizer (Courbariaux et al. 2016): sign with sign(0) = +1, straight-through gradient
//     (zero where |x| > 1 for outputs); parameter targets are clamped to [-1, 1] after every
//     optimizer step. quant_dtype is ignored (a warning); granularity is not supported.
//   NaiveQuantizer (v1): weights only, 8 bits, s = max(previous s, max|w| / 127), w -> trunc(w/s) * s.
#pragma once
#include "compression/quantization/quantizer.h"

namespace shrink::compression {

class DoReFaQuantizer : public Quantizer {
 public:
  DoReFaQuantizer(Host host, const boost::json::value& config_list, train::Trainer& trainer);
};

class BNNQuantizer : public Quantizer {
 public:
  BNNQuantizer(Host host, const boost::json::value& config_list, train::Trainer& trainer);
};

class NaiveQuantizer : public Quantizer {
 public:
  NaiveQuantizer(Host host, const boost::json::value& config_list);
  // Computes the weight scales from the current weights (no training; the arguments are unused).
  CalibrationConfig compress(int64_t max_steps = -1, int64_t max_epochs = -1) override;
};

}  // namespace shrink::compression
