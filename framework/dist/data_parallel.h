// Data parallelism over a Communicator: every rank holds the whole model, trains on its share of
// each global batch, and the gradients are averaged across ranks before the optimizer step, so
// every rank takes the same step (as one process on the global batch would, up to rounding).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"
#include "framework/dist/communicator.h"
#include "framework/dist/device_allreduce.h"
#include "framework/nn/module.h"

namespace shrink::dist {

// The element-wise sum / minimum / maximum of an f32 tensor over the ranks, as a new tensor on
// the same device (`t` itself on one rank); sums in rank order when the communicator is
// deterministic.
Tensor allreduce(Communicator& comm, const Tensor& t, ReduceOp op);

// Rank `root`'s parameters and buffers, copied into every rank's module (same architecture on
// every rank). Makes a run start from one set of weights whatever each rank initialised.
void broadcast_module(Communicator& comm, nn::Module& module, int root = 0);

// Averages gradients across ranks in buckets that are sent while backward still runs: each
// parameter's gradient hook copies its total (scaled by this rank's share of the global batch)
// into its bucket, and a bucket whose parameters are all in starts its all-reduce as soon as the
// buckets before it have started, so the transfer of the last layers' gradients overlaps the
// backward of the first ones. Buckets group the parameters in reverse order, roughly the order
// backward finishes them; starting strictly in index order keeps every rank's collectives in the
// same order.
// Parameters that all live on one device with a DeviceAllReduce registered (NCCL for CUDA) keep
// their buckets on that device and sum them there, in the device's stream order; otherwise the
// buckets are host memory summed through the Communicator. (On the device path a rank whose graph
// differs may wait on its device instead of reaching the arrival check, e.g. inside SyncBatchNorm's
// host all-reduce; the host path always reaches it.)
// A parameter must receive a gradient on every rank or on none: each bucket carries an arrival
// slot per parameter, and finish_step() stops the run, naming the parameter, if the ranks
// disagree (their weights would drift apart).
//
// The reducer's hooks see a gradient after the hooks registered before them and before those
// registered later; finish_step() then replaces grad() by the average, so a hook registered after
// the reducer (e.g. add_tensor_hook from inside a training run) sees, but cannot change, the
// gradient that is reduced.
class GradReducer {
 public:
  struct Options {
    int64_t bucket_bytes = int64_t{4} << 20;
    // Sum every element in rank order (Communicator::allreduce_sum_ordered): bit-identical runs,
    // at the price of the overlap (buckets are reduced after backward).
    bool deterministic = false;
  };
  GradReducer(std::shared_ptr<Communicator> comm, std::vector<std::pair<std::string, Tensor>> params,
              Options options);
  ~GradReducer();  // removes its gradient hooks
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before backward: this rank's share of the step's global batch (its samples / all samples).
  void begin_step(double share);
  // After backward: completes every bucket and sets each parameter's grad() to the average.
  void finish_step();

  // Seconds spent waiting for all-reduces after backward (the part the overlap did not hide),
  // and steps, since construction.
  double wait_seconds() const { return wait_seconds_; }
  int64_t steps() const { return steps_; }
  // Buckets whose all-reduce started while gradients of other buckets were still to come (the
  // overlap with backward), since construction.
  int64_t started_during_backward() const { return started_early_; }
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t num_params() const { return static_cast<int64_t>(params_.size()); }
  // "nccl" (or another DeviceAllReduce's name) when the buckets live on the parameters' device,
  // "host" when they go through the Communicator.
  std::string transport() const { return device_ ? device_->name() : "host"; }
  const std::vector<std::pair<std::string, Tensor>>& params() const { return params_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<float> flat;     // the gradients, then one slot counting how many arrived
    Tensor on_device;            // the same layout on the parameters' device (device path)
    int64_t arrived = 0;
    std::unique_ptr<Pending> pending;
    bool started = false;
  };
  struct Slot {
    size_t bucket = 0;
    size_t index_in_bucket = 0;
    int64_t offset = 0;
    bool arrived = false;
    uint64_t hook = 0;
  };
  void on_grad(size_t index, const Tensor& g);
  void start(Bucket& b);
  void set_up_device_path();

  std::shared_ptr<Communicator> comm_;
  std::unique_ptr<DeviceAllReduce> device_;  // set when the buckets live on the parameters' device
  std::vector<std::pair<std::string, Tensor>> params_;
  Options options_;
  std::vector<Bucket> buckets_;
  std::vector<Slot> slots_;
  float share_ = 1.0f;
  double wait_seconds_ = 0.0;
  int64_t steps_ = 0, started_early_ = 0;
  int64_t arrived_ = 0;    // parameters whose gradient arrived this step
  size_t next_start_ = 0;  // the first bucket not started this step
};

}  // namespace shrink::dist
