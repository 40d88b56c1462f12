// Sums of device buffers across ranks without a round trip through host memory (NCCL for CUDA),
// for GradReducer's buckets of parameters that live on a device. The framework knows no device
// library: a backend that has one registers a factory at start-up (cuda::init registers NCCL
// when the build found it), and the reducer falls back to host copies through the Communicator
// where none is registered. Any device may have one (tests register one for the CPU, to run the
// reducer's device path without a GPU).
#pragma once
#include <functional>
#include <memory>

#include "framework/core/tensor.h"
#include "framework/dist/communicator.h"

namespace shrink::dist {

class DeviceAllReduce {
 public:
  virtual ~DeviceAllReduce() = default;
  // Replaces `buffer` (F32, contiguous, on the device) by the element-wise sum of every rank's,
  // in the device's stream order: the call returns at once, and whatever runs on the device
  // after it sees the sum. Every rank must call it the same number of times, in the same order,
  // with the same sizes.
  virtual void sum(Tensor& buffer) = 0;
  // Makes whatever runs on the device from now on wait for every sum started so far (a sum may
  // run beside the computation, e.g. on a stream of its own, until this is called).
  virtual void finish() {}
  // Says so in logs ("nccl").
  virtual const char* name() const = 0;
};

using DeviceAllReduceFactory = std::function<std::unique_ptr<DeviceAllReduce>(Communicator&)>;

// Registers how to make a DeviceAllReduce for `device` over a communicator's ranks (replaces an
// earlier registration; an empty factory removes it).
void register_device_allreduce(Device device, DeviceAllReduceFactory factory);
bool has_device_allreduce(Device device);
// One for `comm`'s ranks on `device` (collective: every rank of `comm` must call it), or nullptr
// when nothing is registered for that device.
std::unique_ptr<DeviceAllReduce> make_device_allreduce(Communicator& comm, Device device);

// This process's rank among the ranks of the job on its machine (picks its GPU), from the
// launcher's environment (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK, MPICH's MPI_LOCALRANKID); 0
// outside mpirun.
int local_rank();

}  // namespace shrink::dist
