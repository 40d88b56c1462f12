// broadcast_module and GradReducer.
#include "framework/dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "framework/core/autograd.h"
#include "framework/core/error.h"
#include "framework/ops/ops.h"

namespace shrink::dist {

namespace {
// A tensor's values through a CPU float buffer (MPI here is not device-aware).
void broadcast_tensor(Communicator& comm, const Tensor& t, int root) {
  Tensor host = t.device() == Device::CPU ? t : t.to(Device::CPU);
  comm.broadcast(host.raw_data(), static_cast<int64_t>(host.numel()) * static_cast<int64_t>(dtype_size(host.dtype())),
                 root);
  if (t.device() != Device::CPU) t.detach().copy_(host.to(t.device()));
}
}  // namespace

Tensor allreduce(Communicator& comm, const Tensor& t, ReduceOp op) {
  if (comm.size() == 1) return t;
  SHRINK_CHECK(t.dtype() == DType::F32, "dist::allreduce: ", t.describe(), " is not f32");
  Tensor host = t.to(Device::CPU).contiguous_copy();
  if (op == ReduceOp::Sum && comm.deterministic()) comm.allreduce_sum_ordered(host.data<float>(), host.numel());
  else comm.allreduce(host.data<float>(), host.numel(), op);
  return t.device() == Device::CPU ? host : host.to(t.device());
}

void broadcast_module(Communicator& comm, nn::Module& module, int root) {
  if (comm.size() == 1) return;
  for (auto& [name, p] : module.named_parameters()) broadcast_tensor(comm, p, root);
  for (auto& [name, b] : module.named_buffers()) broadcast_tensor(comm, b, root);
}

GradReducer::GradReducer(std::shared_ptr<Communicator> comm, std::vector<std::pair<std::string, Tensor>> params,
                         Options options)
    : comm_(std::move(comm)), params_(std::move(params)), options_(options) {
  SHRINK_CHECK(comm_ != nullptr, "GradReducer: no communicator");
  slots_.resize(params_.size());
  // Reverse order: the last parameters' gradients are finished first in backward.
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k].second;
    SHRINK_CHECK(p.dtype() == DType::F32, "GradReducer: parameter '", params_[k].first, "' is ", p.describe(),
                 "; only f32 parameters are reduced");
    const int64_t nb = p.numel() * static_cast<int64_t>(sizeof(float));
    if (buckets_.empty() || (bytes > 0 && bytes + nb > options_.bucket_bytes)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    slots_[k].bucket = buckets_.size() - 1;
    slots_[k].offset = static_cast<int64_t>(b.flat.size());
    slots_[k].index_in_bucket = b.params.size();
    b.params.push_back(k);
    b.flat.resize(b.flat.size() + static_cast<size_t>(p.numel()));
    bytes += nb;
  }
  // One arrival slot per parameter after the gradients: 1 where this rank got the gradient, so
  // the sum says, parameter by parameter, how many ranks did.
  for (Bucket& b : buckets_) b.flat.resize(b.flat.size() + b.params.size(), 0.0f);
  set_up_device_path();  // before the hooks: a constructor that throws must leave none behind
  for (size_t k = 0; k < params_.size(); ++k)
    slots_[k].hook = params_[k].second.register_hook([this, k](const Tensor& g) {
      on_grad(k, g);
      return Tensor();
    });
}

void GradReducer::set_up_device_path() {
  if (params_.empty() || options_.deterministic) return;  // ordered sums go through the host
  const Device device = params_.front().second.device();
  bool one_device = true;
  for (const auto& [name, p] : params_) one_device &= p.device() == device;
  // Every rank or none: making a DeviceAllReduce is itself a collective.
  int64_t able = one_device && has_device_allreduce(device) ? 1 : 0;
  comm_->allreduce(&able, 1, ReduceOp::Min);
  if (able == 0) return;
  device_ = make_device_allreduce(*comm_, device);
  for (Bucket& b : buckets_)
    b.on_device = Tensor::zeros({static_cast<int64_t>(b.flat.size())}, DType::F32, device);
}

GradReducer::~GradReducer() {
  for (Bucket& b : buckets_) b.pending.reset();  // waits: MPI may still be writing the buffer
  for (size_t k = 0; k < params_.size(); ++k) params_[k].second.remove_hook(slots_[k].hook);
}

void GradReducer::begin_step(double share) {
  SHRINK_CHECK(share >= 0.0 && share <= 1.0, "GradReducer::begin_step: share ", share, " is outside [0, 1]");
  share_ = static_cast<float>(share);
  comm_->set_batch_share(share);
  for (Bucket& b : buckets_) {
    SHRINK_CHECK(!b.pending && !b.started, "GradReducer::begin_step: the previous step was not finished");
    if (device_) b.on_device.zero_();
    else std::fill(b.flat.begin(), b.flat.end(), 0.0f);
    b.arrived = 0;
  }
  for (Slot& s : slots_) s.arrived = false;
  arrived_ = 0;
  next_start_ = 0;
}

void GradReducer::on_grad(size_t index, const Tensor& g) {
  Slot& s = slots_[index];
  SHRINK_CHECK(!s.arrived, "GradReducer: parameter '", params_[index].first, "' received two gradients in one step "
               "(two backward passes before the optimizer step are not supported under data parallelism)");
  s.arrived = true;
  Bucket& b = buckets_[s.bucket];
  const int64_t slot = static_cast<int64_t>(b.flat.size() - b.params.size() + s.index_in_bucket);
  if (device_) {
    SHRINK_CHECK(g.device() == b.on_device.device(), "GradReducer: the gradient of '", params_[index].first, "' is ",
                 g.describe(), ", not on its bucket's device");
    NoGradGuard ng;
    const int64_t n = g.numel();
    slice(b.on_device, 0, s.offset, s.offset + n).copy_(mul(g.reshape({n}), share_));
    slice(b.on_device, 0, slot, slot + 1).fill_(1.0f);
  } else {
    Tensor host = g.device() == Device::CPU ? g : g.to(Device::CPU);
    const float* src = host.data<float>();
    float* dst = b.flat.data() + s.offset;
    for (int64_t i = 0, n = host.numel(); i < n; ++i) dst[i] = src[i] * share_;
    b.flat[static_cast<size_t>(slot)] = 1.0f;
  }
  ++arrived_;
  ++b.arrived;
  // Buckets start in index order only (every rank issues its collectives in the same order,
  // whatever order its gradients complete in): those complete from the next one on.
  while (!options_.deterministic && next_start_ < buckets_.size() &&
         buckets_[next_start_].arrived == static_cast<int64_t>(buckets_[next_start_].params.size())) {
    if (arrived_ < static_cast<int64_t>(params_.size())) ++started_early_;
    start(buckets_[next_start_++]);
  }
  // Lets the buckets already sent move on while backward continues.
  for (Bucket& other : buckets_)
    if (other.pending) other.pending->test();
}

void GradReducer::start(Bucket& b) {
  b.started = true;
  if (device_) device_->sum(b.on_device);  // queued behind the copies into it
  else b.pending = comm_->start_allreduce_sum(b.flat.data(), static_cast<int64_t>(b.flat.size()));
}

void GradReducer::finish_step() {
  const auto t0 = std::chrono::steady_clock::now();
  const float ranks = static_cast<float>(comm_->size());
  // The buckets not started yet (a parameter got no gradient here), in index order.
  for (; !options_.deterministic && next_start_ < buckets_.size(); ++next_start_) start(buckets_[next_start_]);
  // Each bucket's arrival slots, summed, on the host: reading them waits for the sum.
  if (device_) device_->finish();
  std::vector<std::vector<float>> arrived(buckets_.size());
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    const int64_t n = static_cast<int64_t>(b.flat.size()), m = static_cast<int64_t>(b.params.size());
    if (device_) {
      arrived[i] = slice(b.on_device, 0, n - m, n).to(Device::CPU).to_vector();
    } else {
      if (options_.deterministic) {
        comm_->allreduce_sum_ordered(b.flat.data(), n);
      } else {
        b.pending->wait();
        b.pending.reset();
      }
      arrived[i].assign(b.flat.end() - m, b.flat.end());
    }
    b.started = false;
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++steps_;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    // Arrival slots are 0/1 per rank: their float sums are exact.
    const float* arrivals = arrived[i].data();
    for (size_t j = 0; j < b.params.size(); ++j) {
      const float on = arrivals[j], here = slots_[b.params[j]].arrived ? 1.0f : 0.0f;
      if (on != 0.0f && on != ranks)
        fail("data parallel: '", params_[b.params[j]].first, "' received a gradient on ", on, " of ", ranks,
             " ranks in this step (", here != 0.0f ? "this one included" : "not this one",
             "); every rank must run the same graph");
    }
    for (size_t k : b.params) {
      if (!slots_[k].arrived) continue;
      const Tensor& p = params_[k].second;
      const int64_t off = slots_[k].offset;
      if (device_) {
        NoGradGuard ng;
        p.set_grad(slice(b.on_device, 0, off, off + p.numel()).reshape(p.shape()).contiguous_copy());
        continue;
      }
      Tensor g = Tensor::empty(p.shape());
      std::memcpy(g.data<float>(), b.flat.data() + off, static_cast<size_t>(p.numel()) * sizeof(float));
      p.set_grad(p.device() == Device::CPU ? g : g.to(p.device()));
    }
  }
}

}  // namespace shrink::dist
