// The portability layer every kernel in cuda/kernels/ is written against. Compiled by nvcc it
// maps to CUDA itself; compiled as plain C++ (SHRINK_CUDA_EMULATION) it maps to the CPU emulation
// of the CUDA execution model in cuda/emu/, so the same kernel source is tested without a GPU.
//
// Kernel style rules that make this possible:
//   - kernels are declared SHRINK_GLOBAL and launched only through SHRINK_LAUNCH (cuda/launch.h);
//   - shared memory only through SHRINK_SHARED_ARRAY / SHRINK_DYNAMIC_SHARED;
//   - no inline PTX, no <<< >>> anywhere else, no CUDA intrinsics beyond those mapped below.
#pragma once
#include <cstdint>

#if defined(__CUDACC__) && !defined(SHRINK_CUDA_EMULATION)

// Kernels live in headers included by several .cu files: internal linkage avoids duplicate
// definitions at link time.
#define SHRINK_GLOBAL static __global__
#define SHRINK_DEVICE __device__ __forceinline__
#define SHRINK_SHARED_ARRAY(type, name, count) __shared__ type name[count]
#define SHRINK_DYNAMIC_SHARED(type, name) extern __shared__ unsigned char name##_raw_[]; \
  type* name = reinterpret_cast<type*>(name##_raw_)
#define SHRINK_SYNCTHREADS() __syncthreads()
#define SHRINK_SHFL_DOWN(value, delta) __shfl_down_sync(0xffffffffu, (value), (delta))
#define SHRINK_SHFL_XOR(value, mask) __shfl_xor_sync(0xffffffffu, (value), (mask))
#define SHRINK_BALLOT(pred) __ballot_sync(0xffffffffu, (pred))
#define SHRINK_ATOMIC_ADD(addr, value) atomicAdd((addr), (value))
#define SHRINK_ATOMIC_MAX_U32(addr, value) atomicMax((addr), (value))
#define SHRINK_FLOAT_AS_UINT(f) __float_as_uint(f)
#define SHRINK_UINT_AS_FLOAT(u) __uint_as_float(u)

#else  // CPU emulation

#include <cstring>

#include "cuda/emu/emulator.h"

#define SHRINK_GLOBAL inline
#define SHRINK_DEVICE inline
#define threadIdx (::shrink::emu::ctx().thread_idx)
#define blockIdx (::shrink::emu::ctx().block_idx)
#define blockDim (::shrink::emu::ctx().block_dim)
#define gridDim (::shrink::emu::ctx().grid_dim)
#define SHRINK_SHARED_ARRAY(type, name, count) \
  type* name = ::shrink::emu::shared_array<type>(count)
#define SHRINK_DYNAMIC_SHARED(type, name) type* name = ::shrink::emu::dynamic_shared<type>()
#define SHRINK_SYNCTHREADS() ::shrink::emu::syncthreads()
#define SHRINK_SHFL_DOWN(value, delta) ::shrink::emu::shfl_down((value), (delta))
#define SHRINK_SHFL_XOR(value, mask) ::shrink::emu::shfl_xor((value), (mask))
#define SHRINK_BALLOT(pred) ::shrink::emu::ballot(pred)
#define SHRINK_ATOMIC_ADD(addr, value) ::shrink::emu::atomic_add((addr), (value))
#define SHRINK_ATOMIC_MAX_U32(addr, value) ::shrink::emu::atomic_max((addr), (value))
#define SHRINK_FLOAT_AS_UINT(f) ::shrink::emu::bit_cast_u32(f)
#define SHRINK_UINT_AS_FLOAT(u) ::shrink::emu::bit_cast_f32(u)

#endif

namespace shrink::kern {
constexpr int kWarpSize = 32;
}
