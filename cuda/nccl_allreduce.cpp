// NCCL behind dist::DeviceAllReduce: GradReducer's buckets of CUDA parameters are summed on the
// GPUs, on the backend's one stream, so the sums queue behind the copies of the gradients into
// the bucket and ahead of everything that reads them. Built when CMake finds NCCL next to the CUDA
// toolkit; registered by cuda::init.
#include <nccl.h>

#include <memory>

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
  }
  ~NcclAllReduce() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  NcclAllReduce(const NcclAllReduce&) = delete;
  NcclAllReduce& operator=(const NcclAllReduce&) = delete;

  void sum(Tensor& buffer) override {
    SHRINK_CHECK(buffer.device() == Device::CUDA && buffer.dtype() == DType::F32, "NCCL all-reduce: ",
                 buffer.describe(), " is not an f32 CUDA buffer");
    float* data = buffer.data<float>();
    check(ncclAllReduce(data, data, static_cast<size_t>(buffer.numel()), ncclFloat, ncclSum, comm_, current_stream()),
          "ncclAllReduce");
  }
  const char* name() const override { return "nccl"; }

 private:
  ncclComm_t comm_ = nullptr;
};

}  // namespace

void register_nccl() {
  dist::register_device_allreduce(Device::CUDA, [](dist::Communicator& comm) -> std::unique_ptr<dist::DeviceAllReduce> {
    return std::make_unique<NcclAllReduce>(comm);
  });
}

}  // namespace shrink::cuda
