// NCCL behind dist::DeviceAllReduce: GradReducer's buckets of CUDA parameters are summed on the
// GPUs, on a stream of their own so that the transfers run beside the rest of backward. Each sum
// waits (an event) for the backend stream's work queued so far, the copies into its bucket
// included; finish() makes the backend stream wait for every sum. Built when CMake finds NCCL
// next to the CUDA toolkit; registered by cuda::init.
#include <nccl.h>

#include <memory>

#include "cuda/checks.h"
#include "cuda/runtime.h"
#include "framework/core/error.h"
#include "framework/dist/device_allreduce.h"

namespace shrink::cuda {

namespace {

void check(ncclResult_t r, const char* call) {
  SHRINK_CHECK(r == ncclSuccess, "NCCL: ", call, " failed: ", ncclGetErrorString(r));
}

class NcclAllReduce final : public dist::DeviceAllReduce {
 public:
  // Rank 0 makes the unique id; the Communicator (MPI) hands it to the others.
  explicit NcclAllReduce(dist::Communicator& comm) {
    ncclUniqueId id{};
    if (comm.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    comm.broadcast(&id, sizeof(id), 0);
    current_stream();  // the backend's device is selected before NCCL binds to it
    check(ncclCommInitRank(&comm_, comm.size(), id, comm.rank()), "ncclCommInitRank");
    SHRINK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    SHRINK_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    SHRINK_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~NcclAllReduce() override {
    if (stream_) cudaStreamSynchronize(stream_);
    if (comm_) ncclCommDestroy(comm_);
    if (done_) cudaEventDestroy(done_);
    if (ready_) cudaEventDestroy(ready_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  NcclAllReduce(const NcclAllReduce&) = delete;
  NcclAllReduce& operator=(const NcclAllReduce&) = delete;

  void sum(Tensor& buffer) override {
    SHRINK_CHECK(buffer.device() == Device::CUDA && buffer.dtype() == DType::F32, "NCCL all-reduce: ",
                 buffer.describe(), " is not an f32 CUDA buffer");
    float* data = buffer.data<float>();
    SHRINK_CUDA_CHECK(cudaEventRecord(ready_, current_stream()));  // the bucket's copies are queued
    SHRINK_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    check(ncclAllReduce(data, data, static_cast<size_t>(buffer.numel()), ncclFloat, ncclSum, comm_, stream_),
          "ncclAllReduce");
  }
  void finish() override {
    SHRINK_CUDA_CHECK(cudaEventRecord(done_, stream_));
    SHRINK_CUDA_CHECK(cudaStreamWaitEvent(current_stream(), done_, 0));
  }
  const char* name() const override { return "nccl"; }

 private:
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
};

}  // namespace

void register_nccl() {
  dist::register_device_allreduce(Device::CUDA, [](dist::Communicator& comm) -> std::unique_ptr<dist::DeviceAllReduce> {
    return std::make_unique<NcclAllReduce>(comm);
  });
}

}  // namespace shrink::cuda
