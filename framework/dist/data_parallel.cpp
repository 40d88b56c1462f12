// broadcast_module and GradReducer.
#include "framework/dist/data_parallel.h"

#include <chrono>
#include <cstring>

#include "framework/core/error.h"

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
  comm.allreduce(host.data<float>(), host.numel(), op);
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
    b.params.push_back(k);
    b.flat.resize(b.flat.size() + static_cast<size_t>(p.numel()));
    bytes += nb;
  }
  for (Bucket& b : buckets_) b.flat.push_back(0.0f);  // the arrival count
  for (size_t k = 0; k < params_.size(); ++k)
    slots_[k].hook = params_[k].second.register_hook([this, k](const Tensor& g) {
      on_grad(k, g);
      return Tensor();
    });
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
    SHRINK_CHECK(!b.pending, "GradReducer::begin_step: the previous step was not finished");
    std::fill(b.flat.begin(), b.flat.end(), 0.0f);
    b.arrived = 0;
  }
  for (Slot& s : slots_) s.arrived = false;
  arrived_ = 0;
}

void GradReducer::on_grad(size_t index, const Tensor& g) {
  Slot& s = slots_[index];
  SHRINK_CHECK(!s.arrived, "GradReducer: parameter '", params_[index].first, "' received two gradients in one step "
               "(two backward passes before the optimizer step are not supported under data parallelism)");
  s.arrived = true;
  Tensor host = g.device() == Device::CPU ? g : g.to(Device::CPU);
  const float* src = host.data<float>();
  Bucket& b = buckets_[s.bucket];
  float* dst = b.flat.data() + s.offset;
  for (int64_t i = 0, n = host.numel(); i < n; ++i) dst[i] = src[i] * share_;
  ++arrived_;
  if (++b.arrived == static_cast<int64_t>(b.params.size()) && !options_.deterministic) {
    if (arrived_ < static_cast<int64_t>(params_.size())) ++started_early_;
    start(b);
  }
  // Lets the buckets already sent move on while backward continues.
  for (Bucket& other : buckets_)
    if (other.pending) other.pending->test();
}

void GradReducer::start(Bucket& b) {
  b.flat.back() = static_cast<float>(b.arrived);
  b.pending = comm_->start_allreduce_sum(b.flat.data(), static_cast<int64_t>(b.flat.size()));
}

void GradReducer::finish_step() {
  const auto t0 = std::chrono::steady_clock::now();
  const float ranks = static_cast<float>(comm_->size());
  for (Bucket& b : buckets_) {
    if (options_.deterministic) {
      b.flat.back() = static_cast<float>(b.arrived);
      comm_->allreduce_sum_ordered(b.flat.data(), static_cast<int64_t>(b.flat.size()));
    } else {
      if (!b.pending) start(b);  // some parameter got no gradient here
      b.pending->wait();
      b.pending.reset();
    }
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++steps_;
  for (Bucket& b : buckets_) {
    // Counts are small integers: their float sum is exact.
    if (b.flat.back() != ranks * static_cast<float>(b.arrived)) {
      std::string missing;
      for (size_t k : b.params)
        if (!slots_[k].arrived) missing += (missing.empty() ? "'" : ", '") + params_[k].first + "'";
      fail("data parallel: the ranks disagree on which parameters received a gradient in this step (",
           missing.empty() ? std::string("this rank got all of its bucket") : "this rank got none for " + missing,
           "); every rank must run the same graph");
    }
    for (size_t k : b.params) {
      if (!slots_[k].arrived) continue;
      const Tensor& p = params_[k].second;
      Tensor g = Tensor::empty(p.shape());
      std::memcpy(g.data<float>(), b.flat.data() + slots_[k].offset, static_cast<size_t>(p.numel()) * sizeof(float));
      p.set_grad(p.device() == Device::CPU ? g : g.to(p.device()));
    }
  }
}

}  // namespace shrink::dist
