#include "compression/quantization/lsq_quantizer.h"

#include <cfloat>
#include <algorithm>
#include <cmath>

#include "framework/core/autograd.h"
#include "framework/dist/data_parallel.h"
#include "framework/ops/ops.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

LsqQuantizer::LsqQuantizer(Host host, const boost::json::value& config_list,
                           train::Trainer& trainer)
    : LsqQuantizer(std::move(host), config_list, trainer, false) {}

LsqQuantizer::LsqQuantizer(Host host, const boost::json::value& config_list,
                           train::Trainer& trainer, bool plus)
    : Quantizer(std::move(host), config_list, &trainer, plus ? "LsqPlusQuantizer" : "LsqQuantizer"), plus_(plus) {
  require_levels();
  for (TargetState* t : targets()) {
    const QuantScheme want = plus_ ? QuantScheme::Affine : QuantScheme::Symmetric;
    if (quant_scheme(*t) != want)
      warnings_.push_back(who_ + ": " + t->key() + " has quant_scheme " + to_string(quant_scheme(*t)) + "; " + who_ +
                          " learns a " + to_string(want) + " quantizer");
  }
  set_apply_method(plus_ ? "lsq_plus_clamp_round" : "lsq_clamp_round");
  add_tracker([this](TargetState& t, const Tensor& v, bool training) {
    if (!t.scale.defined()) initialise(t, v);
    // A training forward under data parallelism sees this rank's share of the batch.
    const data::Batch& b = this->trainer().current_batch();
    const bool activation = t.kind != TargetKind::Parameter && t.kind != TargetKind::Buffer;
    t.numel_factor = training && activation && b.global_size > 0 && b.size() > 0
                         ? static_cast<double>(b.global_size) / static_cast<double>(b.size())
                         : 1.0;
  });
}

void LsqQuantizer::initialise(TargetState& t, const Tensor& value) {
  Tensor scale, zero;
  {
    NoGradGuard ng;
    const std::optional<Scaling> scaling = quant_scaling(t);
    // The first batch's statistics over every rank's part of it, as one process would see it.
    dist::Communicator& comm = communicator();
    if (plus_) {
      auto [lo, hi] = block_min_max(value, scaling);
      lo = dist::allreduce(comm, lo, dist::ReduceOp::Min);
      hi = dist::allreduce(comm, hi, dist::ReduceOp::Max);
      ScaleZeroPoint sz = compute_scale_zero_point(lo, hi, t.qmin, t.qmax, QuantScheme::Affine);
      scale = sz.scale.contiguous_copy();
      zero = sz.zero_point.contiguous_copy();
    } else {
      const Tensor a = abs(value.detach());
      Tensor mean_abs = scaling ? scaling->shrink(a, Scaling::Reduce::Mean) : mean(a);
      if (comm.size() > 1) {
        double count = static_cast<double>(a.numel() / std::max<int64_t>(1, mean_abs.numel()));
        const Tensor weighted = dist::allreduce(comm, mul(mean_abs, static_cast<float>(count)), dist::ReduceOp::Sum);
        comm.allreduce(&count, 1, dist::ReduceOp::Sum);
        mean_abs = mul(weighted, static_cast<float>(1.0 / count));
      }
      scale = maximum(mul(mean_abs, static_cast<float>(2.0 / std::sqrt(static_cast<double>(t.qmax)))),
                      Tensor::full(mean_abs.shape(), FLT_EPSILON, mean_abs.device()))
                  .contiguous_copy();
      zero = Tensor::zeros(scale.shape(), DType::F32, scale.device());
    }
  }
  t.scale = scale;
  t.zero_point = zero;
  learn(t);
}

void LsqQuantizer::learn(TargetState& t) {
  t.scale = t.scale.detach().contiguous_copy().set_requires_grad(true);
  std::vector<Tensor> learned{t.scale};
  if (plus_) {
    t.zero_point = t.zero_point.detach().contiguous_copy().set_requires_grad(true);
    learned.push_back(t.zero_point);
  }
  // A group of their own without weight decay: decay would pull every step size towards zero.
  optim::GroupOptions options = trainer().optimizer().defaults();
  options.weight_decay = 0.f;
  // Named, so that a checkpoint finds the group whatever order the first forwards gave.
  trainer().optimizer().add_param_group(learned, options, state_prefix() + t.key());
  learned_.push_back(t.key());
}

void LsqQuantizer::save_state(io::StateDict& out, const std::string& prefix) {
  Quantizer::save_state(out, prefix);
  std::string order;
  for (const std::string& key : learned_) order += key + "\n";
  out.put_text(prefix + "learned_order", order);
}

void LsqQuantizer::load_state(const io::StateDict& in, const std::string& prefix) {
  std::vector<std::string> saved;
  const std::string& order = in.text(prefix + "learned_order");
  for (size_t b = 0, e; (e = order.find('\n', b)) != std::string::npos; b = e + 1) saved.push_back(order.substr(b, e - b));
  SHRINK_CHECK(saved.size() >= learned_.size() && std::equal(learned_.begin(), learned_.end(), saved.begin()),
               in.source, ": ", who_, "'s learned scales joined the optimizer in another order in the checkpoint");
  Quantizer::load_state(in, prefix);
  const std::vector<TargetState*> own = targets();
  for (size_t i = learned_.size(); i < saved.size(); ++i) learn(find_target(own, saved[i], "LsqQuantizer::load_state"));
}

}  // namespace shrink::compression
