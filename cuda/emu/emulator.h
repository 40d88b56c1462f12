// CPU emulation of the CUDA execution model for testing kernels without a GPU: a grid of blocks,
// each block's threads run as real std::threads so __syncthreads (a std::barrier), shared memory
// (per block), warp shuffles and votes (per-warp exchange buffers and barriers) and atomics
// (std::atomic_ref) behave as on a device. Blocks run one after another. Requires C++20.
#pragma once
#include <atomic>
#include <barrier>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace shrink::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

struct Block;

struct ThreadContext {
  Dim3 thread_idx, block_idx, block_dim, grid_dim;
  Block* block = nullptr;
  int shared_slot = 0;  // index of the next SHRINK_SHARED_ARRAY declaration this thread meets
};

// The calling emulated thread's context (set for the duration of a kernel).
ThreadContext& ctx();

// ---- what kernels call ----
void syncthreads();
void* shared_bytes(size_t bytes);  // the block's next static shared array
template <typename T>
T* shared_array(size_t count) {
  return static_cast<T*>(shared_bytes(count * sizeof(T)));
}
void* dynamic_shared_bytes();
template <typename T>
T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_bytes());
}
float shfl_down(float v, unsigned delta);
int shfl_down(int v, unsigned delta);
unsigned shfl_down(unsigned v, unsigned delta);
float shfl_xor(float v, unsigned mask);
int shfl_xor(int v, unsigned mask);
unsigned ballot(bool pred);
float atomic_add(float* addr, float v);
unsigned atomic_add(unsigned* addr, unsigned v);
int atomic_add(int* addr, int v);
unsigned long long atomic_add(unsigned long long* addr, unsigned long long v);
unsigned atomic_max(unsigned* addr, unsigned v);
inline uint32_t bit_cast_u32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bit_cast_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- launching (used by cuda/launch.h) ----
// Runs body() once per thread of every block. Throws shrink::Error on a bad configuration or
// when a thread throws (after every thread of the block has finished).
void launch(const char* kernel_name, Dim3 grid, Dim3 block, size_t dynamic_shared,
            const std::function<void()>& body);

// Names of the kernels launched so far in this process (for the coverage test).
std::set<std::string> launched_kernels();

}  // namespace shrink::emu
