// QATQuantizer (Jacob et al. 2018; NNI 3.0's QATQuantizer, nni-semantics §4.2): quantization-aware
// training. Every target's min/max is tracked by an exponential moving average (decay 0.99, the
// first observation copied) on each training forward, weights included; once `quant_start_step`
// optimizer steps have run, scale and zero point are recomputed from the tracked range on every
// training forward before the value is fake-quantized with qat_clamp_round (the gradient is zero
// where the value was clipped). Eval-mode forwards use the last scale and zero point. Before the
// start step targets pass through (bypass). A legacy config's quant_start_step overrides the
// constructor's for its targets.
#pragma once
#include "compression/quantization/quantizer.h"

namespace shrink::compression {

class QATQuantizer : public Quantizer {
 public:
  QATQuantizer(Host host, const boost::json::value& config_list, train::Trainer& trainer,
               int64_t quant_start_step = 0);
  int64_t current_step() const { return step_; }

  static constexpr double kEmaDecay = 0.99;

 protected:
  void save_state(io::StateDict& out, const std::string& prefix) override;
  void load_state(const io::StateDict& in, const std::string& prefix) override;

 private:
  int64_t start_step(const TargetState& t) const;
  void update_apply_methods();

  int64_t start_;
  int64_t step_ = 0;
};

}  // namespace shrink::compression
