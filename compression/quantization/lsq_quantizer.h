// Learned step size quantization: LsqQuantizer (Esser et al. 2020) and LsqPlusQuantizer
// (Bhalgat et al. 2020), nni-semantics §4.2. Each target's scale (LSQ+: and zero point) is a
// trainable tensor in the target's shrunk shape, added to the trainer's optimizer as a parameter
// group of its own (the optimizer's defaults without weight decay) when it is created.
//
// Initialisation, on the first value the target sees (DECISIONS row 15; NNI uses 0.01):
//   LSQ:  s = 2 * mean(|x|) / sqrt(qmax) per block, z = 0 (the paper's)
//   LSQ+: s and z from the first value's min/max with the affine formula (quant_params.h)
// Both are then learned: lsq_clamp_round / lsq_plus_clamp_round, whose scale gradient carries the
// factor 1/sqrt(qmax * numel). A calibration loaded before the first forward
// (update_calibration_config) replaces the initialisation and is learned the same way.
#pragma once
#include "compression/quantization/quantizer.h"

namespace shrink::compression {

class LsqQuantizer : public Quantizer {
 public:
  LsqQuantizer(Host host, const boost::json::value& config_list, train::Trainer& trainer);

 protected:
  LsqQuantizer(Host host, const boost::json::value& config_list, train::Trainer& trainer,
               bool plus);

 protected:
  void calibration_loaded(TargetState& t) override { learn(t); }
  // Checkpoints also record which scales were learned (in the order of their first forwards): a
  // resumed run adds the restored ones before the optimizer's state is loaded. Their optimizer
  // groups are named "<state prefix><target key>", so the optimizer's state finds each one even
  // when several quantizers' groups were interleaved by forward order.
  void save_state(io::StateDict& out, const std::string& prefix) override;
  void load_state(const io::StateDict& in, const std::string& prefix) override;

 private:
  void initialise(TargetState& t, const Tensor& value);
  // Makes the target's scale (and LSQ+'s zero point) trainable leaves in the optimizer.
  void learn(TargetState& t);
  bool plus_;
  std::vector<std::string> learned_;  // target keys, in the order learn() saw them
};

class LsqPlusQuantizer : public LsqQuantizer {
 public:
  LsqPlusQuantizer(Host host, const boost::json::value& config_list,
                   train::Trainer& trainer)
      : LsqQuantizer(std::move(host), config_list, trainer, true) {}
};

}  // namespace shrink::compression
