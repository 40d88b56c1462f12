#include "compression/pruning/activation_pruners.h"

#include "framework/core/autograd.h"
#include "framework/dist/data_parallel.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

ActivationPruner::ActivationPruner(Host host, const boost::json::value& config_list,
                                   std::shared_ptr<data::DataLoader> loader, int64_t num_batches,
                                   const std::string& activation, const char* who)
    : Pruner(std::move(host), config_list, nullptr, who), loader_(std::move(loader)), num_batches_(num_batches),
      activation_(activation) {
  SHRINK_CHECK(loader_ != nullptr, who_, ": a data loader is required");
  SHRINK_CHECK(num_batches > 0, who_, ": num_batches must be positive, got ", num_batches);
  SHRINK_CHECK(activation == "relu" || activation == "relu6" || activation == "gelu", who_,
               ": unknown activation '", activation, "' (valid: relu, relu6, gelu)");
}

void ActivationPruner::bind_schedule(int64_t) {
  fail(who_, " collects its activation statistics once; it cannot be driven by LinearPruner/AGPPruner");
}

void ActivationPruner::observe(const std::string& module_name, const Tensor& output) {
  SHRINK_CHECK(output.dim() >= 2, who_, ": output of ", module_name, " is ", output.shape(),
               "; channels are dim 1, after the batch dim");
  Tensor act = activation_ == "relu" ? relu(output) : activation_ == "relu6" ? relu6(output) : gelu(output);
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < output.dim(); ++d)
    if (d != 1) dims.push_back(d);
  Tensor s = sum(statistic(act), dims);
  auto it = sums_.find(module_name);
  if (it == sums_.end()) sums_[module_name] = s.contiguous_copy();
  else it->second = add(it->second, s);
  counts_[module_name] += static_cast<double>(output.numel() / output.size(1));
}

namespace {
// Removes the collection hooks and restores the model's mode however collection ends.
struct CollectionScope {
  nn::Module& model;
  bool was_training;
  std::vector<nn::HookHandle> handles;
  ~CollectionScope() {
    for (auto& h : handles) h.remove();
    model.train(was_training);
  }
};
}  // namespace

void ActivationPruner::collect() {
  sums_.clear();
  counts_.clear();
  CollectionScope scope{*model_, model_->is_training(), {}};
  for (auto& [name, w] : wrappers()) {
    bool active = false;
    for (TargetState* t : w->targets()) active = active || (t->is(CompressorKind::Pruning) && is_active(*t));
    if (!active) continue;
    scope.handles.push_back(w->module().register_forward_hook(
        [this, n = name](nn::Module&, const std::vector<nn::Value>&, const nn::Value& out) -> std::optional<nn::Value> {
          SHRINK_CHECK(out.is_tensor(), who_, ": ", n, " does not return a single tensor");
          observe(n, out.tensor());
          return std::nullopt;
        }));
  }
  NoGradGuard ng;
  model_->eval();
  dist::Communicator& comm = communicator();
  if (comm.size() > 1) loader_->set_shard(comm.rank(), comm.size());  // each rank its part of every batch
  Device device = Device::CPU;
  for (const Tensor& p : model_->parameters()) {
    device = p.device();
    break;
  }
  data::Batch b;
  for (int64_t n = 0; n < num_batches_; ++n) {
    if (!loader_->next(b)) {
      loader_->start_epoch();
      SHRINK_CHECK(loader_->next(b), who_, ": the data loader yields no batches");
    }
    (*model_)(b.inputs.to(device));
  }
  // The statistics of every rank's part: the sums and counts one process would have.
  for (auto& [name, sum] : sums_) {
    sum = dist::allreduce(comm, sum, dist::ReduceOp::Sum);
    comm.allreduce(&counts_[name], 1, dist::ReduceOp::Sum);
  }
}

Masks ActivationPruner::compress() {
  collect();
  generate_masks();
  return get_masks();
}

Tensor ActivationPruner::metric(TargetState& t, const Tensor& value, const std::optional<Scaling>& s) {
  auto it = sums_.find(t.module_name);
  SHRINK_CHECK(it != sums_.end(), who_, ": no activation of ", t.module_name, " was observed (run compress())");
  Tensor channel = to_metric(mul(it->second, static_cast<float>(1.0 / counts_.at(t.module_name))));
  Shape shrunk = s ? s->shrunk_shape(value.shape()) : value.shape();
  SHRINK_CHECK(shape_numel(shrunk) == channel.numel(), who_, ": ", t.key(), " has ", shape_numel(shrunk),
               " blocks at its granularity but ", t.module_name, " has ", channel.numel(),
               " output channels (use granularity out_channel)");
  return reshape(channel, shrunk);
}

Tensor ActivationAPoZRankPruner::statistic(const Tensor& activated) const {
  return eq(activated, Tensor::zeros({}, DType::F32, activated.device()));
}

Tensor ActivationAPoZRankPruner::to_metric(const Tensor& channel_mean) const {
  return sub(Tensor::ones({}, DType::F32, channel_mean.device()), channel_mean);
}

}  // namespace shrink::compression
