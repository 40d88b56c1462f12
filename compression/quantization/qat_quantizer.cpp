#include "compression/quantization/qat_quantizer.h"

#include "compression/quantization/observers.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

QATQuantizer::QATQuantizer(Host host, const boost::json::value& config_list,
                           train::Trainer& trainer, int64_t quant_start_step)
    : Quantizer(std::move(host), config_list, &trainer, "QATQuantizer"), start_(std::max<int64_t>(quant_start_step, 0)) {
  require_levels();
  update_apply_methods();
  add_tracker([this](TargetState& t, const Tensor& v, bool training) {
    if (!training) return;
    observe_ema(t, v, kEmaDecay, communicator());
    if (step_ >= start_step(t)) refresh_scale_zero_point(t);
  });
  hooks().after_step([this] {
    ++step_;
    for (TargetState* t : targets())
      if (start_step(*t) == step_) return update_apply_methods();  // only when a target starts
  });
}

int64_t QATQuantizer::start_step(const TargetState& t) const {
  const auto* s = t.settings(CompressorKind::Quantization).if_contains("quant_start_step");
  return s && !s->is_null() ? s->to_number<int64_t>() : start_;
}

void QATQuantizer::update_apply_methods() {
  for (TargetState* t : targets()) set_apply_method(*t, step_ < start_step(*t) ? "bypass" : "qat_clamp_round");
}

void QATQuantizer::save_state(io::StateDict& out, const std::string& prefix) {
  Quantizer::save_state(out, prefix);
  out.put_int(prefix + "step", step_);
}

void QATQuantizer::load_state(const io::StateDict& in, const std::string& prefix) {
  Quantizer::load_state(in, prefix);
  step_ = in.integer(prefix + "step");
  update_apply_methods();
}

}  // namespace shrink::compression
