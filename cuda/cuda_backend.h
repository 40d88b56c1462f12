// Entry points of the CUDA backend for programs (no CUDA header needed to include this).
// The backend registers itself with the framework only when a device is actually usable.
#pragma once
#include <string>

namespace shrink::cuda {

// Number of usable CUDA devices: 0 when the runtime reports any error (no driver: error 35,
// no device: error 100, ...). Never throws, never crashes.
int device_count();
// Registers the CUDA backend with the framework if a device is present; returns whether it did.
// A process uses one device: under mpirun its local rank's (modulo the device count), else
// device 0; CUDA work is issued from one thread. With NCCL in the build, and no more ranks on
// this machine than GPUs, it also registers NCCL as the data-parallel gradient reducer for CUDA
// parameters (dist/device_allreduce.h). Safe to call more than once.
bool init();
// "NVIDIA H100 80GB HBM3, 132 SMs, cc 9.0" or the reason there is none.
std::string describe_device();

}  // namespace shrink::cuda
