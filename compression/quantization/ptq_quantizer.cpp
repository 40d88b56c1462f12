#include "compression/quantization/ptq_quantizer.h"

#include <algorithm>

#include "compression/quantization/module_fusion.h"
#include "compression/quantization/observers.h"
#include "framework/core/autograd.h"
#include "framework/dist/data_parallel.h"
#include "framework/ops/ops.h"
#include "framework/train/progress.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

PtqQuantizer::PtqQuantizer(Host host, const boost::json::value& config_list,
                           train::Trainer* trainer, PtqOptions options)
    : Quantizer(std::move(host), config_list, trainer, "PtqQuantizer"), options_(options) {
  SHRINK_CHECK(options_.percentile > 0.0 && options_.percentile <= 100.0, who_, ": percentile ", options_.percentile,
               " must be in (0, 100]");
  require_levels();
  set_apply_method("bypass");
  add_tracker([this](TargetState& t, const Tensor& v, bool) {
    if (done_) return;
    dist::Communicator& comm = communicator();
    observe_min_max(t, v, comm);
    if (!uses_histogram(t)) return;
    const Tensor rows = blocks_as_rows(v, quant_scaling(t));
    if (comm.size() == 1) return histograms_[t.key()].add(rows);
    std::vector<float> block_max = AbsHistogram::block_abs_max(rows);
    comm.allreduce(block_max.data(), static_cast<int64_t>(block_max.size()), dist::ReduceOp::Max);
    histograms_[t.key()].add(rows, &block_max);
  });
}

PtqQuantizer::~PtqQuantizer() {
  for (auto& [name, e] : bias_errors_) e.hook.remove();  // the hooks refer to bias_errors_
}

bool PtqQuantizer::uses_histogram(const TargetState& t) const {
  if (options_.observer == RangeObserver::MinMax) return false;
  // Entropy calibration is for activations (TensorRT's too): a weight is known in full, and the
  // few thousand values of one channel make a histogram too sparse for a KL search.
  return options_.observer != RangeObserver::Kl || (t.kind != TargetKind::Parameter && t.kind != TargetKind::Buffer);
}

void PtqQuantizer::clip_ranges() {
  for (TargetState* t : targets()) {
    auto h = histograms_.find(t->key());
    if (h == histograms_.end()) continue;
    std::vector<float> lo = t->tracked_min.to_vector(), hi = t->tracked_max.to_vector();
    std::vector<double> levels(lo.size());
    const double span = static_cast<double>(t->qmax) - t->qmin;
    for (size_t b = 0; b < lo.size(); ++b)
      levels[b] = quant_scheme(*t) == QuantScheme::Affine && lo[b] >= 0.f ? span : span / 2.0;
    h->second.sum_across_ranks(communicator());
    const std::vector<float> amax = h->second.amax(options_.observer, options_.percentile, levels);
    for (size_t b = 0; b < lo.size(); ++b) {
      lo[b] = std::max(lo[b], -amax[b]);
      hi[b] = std::min(hi[b], amax[b]);
    }
    const Device d = t->tracked_min.device();
    t->tracked_min = Tensor::from_vector(lo, t->tracked_min.shape()).to(d);
    t->tracked_max = Tensor::from_vector(hi, t->tracked_max.shape()).to(d);
  }
}

void PtqQuantizer::calibrate(const std::vector<nn::Value>& inputs) {
  SHRINK_CHECK(!done_, "PtqQuantizer: calibration already finished");
  const bool was_training = model_->is_training();
  model_->eval();
  NoGradGuard ng;
  (*model_)(inputs);
  model_->train(was_training);
}

template <typename F>
void PtqQuantizer::for_calibration_batches(int64_t max_steps, int64_t max_epochs, F&& f) {
  data::DataLoader& loader = *trainer().train_loader();
  dist::Communicator& comm = communicator();
  if (comm.size() > 1) loader.set_shard(comm.rank(), comm.size());  // each rank its part of every batch
  const Device device = model_->parameter_device();
  int64_t done = 0;
  progress::Bar bar("calibration", max_steps > 0 ? max_steps : std::max<int64_t>(0, max_epochs) * loader.num_batches());
  for (int64_t epoch = 0; max_epochs <= 0 || epoch < max_epochs; ++epoch) {
    loader.start_epoch(epoch);  // the order of epoch e depends on (seed, e) only: replayable
    data::Batch b;
    int64_t in_epoch = 0;
    while ((max_steps <= 0 || done < max_steps) && loader.next(b)) {
      f(std::vector<nn::Value>{nn::Value(b.inputs.to(device))});
      bar.update(++done);
      ++in_epoch;
    }
    if ((max_steps > 0 && done >= max_steps) || in_epoch == 0) break;
  }
}

CalibrationConfig PtqQuantizer::compress(int64_t max_steps, int64_t max_epochs) {
  SHRINK_CHECK(fused().size() == 1, who_, " calibrates without training, so it cannot drive a fused run; build it ",
               "before the compressors that train (it then observes during their training and computes its ",
               "scales when the run ends)");
  SHRINK_CHECK(max_steps > 0 || max_epochs > 0, "PtqQuantizer::compress: give a number of calibration batches ",
               "(max_steps) or epochs");
  for_calibration_batches(max_steps, max_epochs, [this](const std::vector<nn::Value>& in) { calibrate(in); });
  CalibrationConfig c = finish_calibration();
  if (!options_.bias_correction) return c;
  for_calibration_batches(max_steps, max_epochs, [this](const std::vector<nn::Value>& in) { measure_bias_error(in); });
  apply_bias_correction();
  return get_calibration_config();
}

void PtqQuantizer::measure_bias_error(const std::vector<nn::Value>& inputs) {
  SHRINK_CHECK(done_, who_, ": bias correction runs after finish_calibration()");
  if (bias_errors_.empty()) {
    for (auto& [name, w] : wrappers()) {
      nn::Module& m = w->module();
      TargetState* weight = w->find("weight");
      const bool layer = m.type_name() == "Conv2d" || m.type_name() == "Linear";
      if (!layer || !weight || !weight->is(CompressorKind::Quantization) || fusions_.count(name) ||
          !m.has_parameter("bias") || !m.param("bias").defined())
        continue;
      BiasError& e = bias_errors_[name];
      // Prepended: sees the module's own output, before the wrapper quantizes it.
      e.hook = m.register_forward_hook(
          [&e, conv = m.type_name() == "Conv2d"](nn::Module& mod, const std::vector<nn::Value>& in,
                                                 const nn::Value& out) -> std::optional<nn::Value> {
            const Tensor& y = out.tensor();
            Tensor y_float = layer_forward(mod, in.at(0).tensor(), mod.parameter("weight"), mod.parameter("bias"));
            Tensor diff = sub(y_float, y);
            std::vector<int64_t> dims;
            const int64_t channel = conv ? 1 : diff.dim() - 1;
            for (int64_t d = 0; d < diff.dim(); ++d)
              if (d != channel) dims.push_back(d);
            Tensor s = sum(diff, dims);
            e.sum = e.sum.defined() ? add(e.sum, s) : s;
            e.count += static_cast<double>(diff.numel() / diff.size(channel));
            return std::nullopt;
          },
          /*prepend=*/true);
    }
  }
  const bool was_training = model_->is_training();
  model_->eval();
  NoGradGuard ng;
  (*model_)(inputs);
  model_->train(was_training);
}

std::vector<std::string> PtqQuantizer::apply_bias_correction() {
  std::vector<std::string> corrected;
  NoGradGuard ng;
  dist::Communicator& comm = communicator();
  for (auto& [name, e] : bias_errors_) {
    e.hook.remove();
    if (comm.size() > 1) {  // every rank's part of the calibration batches
      int64_t seen = e.sum.defined() ? 1 : 0;  // a layer the calibration never reached: on every rank
      comm.allreduce(&seen, 1, dist::ReduceOp::Sum);
      if (seen == 0) continue;
      SHRINK_CHECK(seen == comm.size(), who_, ": bias correction of ", name, ": the layer ran on ", seen, " of ",
                   comm.size(), " ranks");
      e.sum = dist::allreduce(comm, e.sum, dist::ReduceOp::Sum);
      comm.allreduce(&e.count, 1, dist::ReduceOp::Sum);
    }
    if (!e.sum.defined() || e.count == 0) continue;
    Tensor& bias = wrapper(name).module().parameter("bias");
    bias.copy_(add(bias, mul(e.sum, static_cast<float>(1.0 / e.count))));
    corrected.push_back(name);
    if (TargetState* b = wrapper(name).find("bias"); b && b->is(CompressorKind::Quantization)) {
      auto [lo, hi] = block_min_max(bias, quant_scaling(*b));
      b->tracked_min = lo;
      b->tracked_max = hi;
      refresh_scale_zero_point(*b);
    }
  }
  bias_errors_.clear();
  return corrected;
}

CalibrationConfig PtqQuantizer::finish_calibration() {
  for (TargetState* t : targets())
    SHRINK_CHECK(t->tracked_min.defined(), "PtqQuantizer: ", t->key(), " saw no value during calibration ",
                 "(is the module reached by the calibration forwards?)");
  clip_ranges();
  for (TargetState* t : targets()) refresh_scale_zero_point(*t);
  done_ = true;
  set_apply_method("clamp_round");
  return get_calibration_config();
}

}  // namespace shrink::compression
