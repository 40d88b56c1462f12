// Self-tests of the CPU emulation of the CUDA execution model (cuda/emu/): the kernel tests are
// only as good as the emulator's shared memory, barriers, warp exchanges and atomics, so each of
// those is checked here on a kernel whose result is wrong if the primitive is. The kernels exist
// only for these tests, so they live here and not in cuda/kernels/ (whose kernels the coverage
// test requires the kernel cases to launch).
#define SHRINK_CUDA_EMULATION 1
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda/launch.h"
#include "framework/core/error.h"

namespace {
using shrink::cuda::Dim;

// A launch that hangs would hang the whole test binary; fail loudly instead. The emulator's
// worker threads cannot be cancelled, so a hang ends the process.
template <typename Fn>
void with_deadline(const char* what, Fn fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    std::fprintf(stderr, "emulator self-test '%s' hung: aborting\n", what);
    std::_Exit(1);
  }
  done.get();  // rethrows
}

// Each block reverses its slice through shared memory, `rounds` times over (an even count is the
// identity), with a barrier between writing and reading: without a working barrier threads read
// slots not yet written (0xFF filler, i.e. NaN) or already overwritten.
SHRINK_GLOBAL void reverse_rounds_kernel(const float* in, float* out, int rounds) {
  SHRINK_SHARED_ARRAY(float, tile, 256);
  const unsigned t = threadIdx.x, n = blockDim.x;
  float v = in[blockIdx.x * n + t];
  for (int r = 0; r < rounds; ++r) {
    tile[t] = v;
    SHRINK_SYNCTHREADS();
    v = tile[n - 1 - t];
    SHRINK_SYNCTHREADS();  // before the next round overwrites the tile
  }
  out[blockIdx.x * n + t] = v;
}

// Dynamic shared memory sized at launch, carved into two arrays: a float copy of the block's
// input and an int array of thread ids, both read back crosswise after a barrier.
SHRINK_GLOBAL void dynamic_shared_kernel(const float* in, float* out, int* ids) {
  SHRINK_DYNAMIC_SHARED(unsigned char, raw);
  float* vals = reinterpret_cast<float*>(raw);
  int* who = reinterpret_cast<int*>(raw + blockDim.x * sizeof(float));
  const unsigned t = threadIdx.x, n = blockDim.x;
  vals[t] = in[blockIdx.x * n + t] * 2.f;
  who[t] = static_cast<int>(t);
  SHRINK_SYNCTHREADS();
  out[blockIdx.x * n + t] = vals[(t + 1) % n];
  ids[blockIdx.x * n + t] = who[(t + 1) % n];
}

// Butterfly (XOR) all-reduce: every lane ends with the warp's total; SHFL_DOWN tree: lane 0 does.
SHRINK_GLOBAL void shuffle_kernel(int* xor_total, int* down_total) {
  int v = static_cast<int>(threadIdx.x) + 1;
  int w = v;
  for (unsigned m = 16; m > 0; m >>= 1) v += SHRINK_SHFL_XOR(v, m);
  for (unsigned d = 16; d > 0; d >>= 1) w += SHRINK_SHFL_DOWN(w, d);
  xor_total[threadIdx.x] = v;
  if (threadIdx.x % 32 == 0) down_total[threadIdx.x / 32] = w;
}

SHRINK_GLOBAL void ballot_kernel(unsigned* masks) {
  const unsigned lane = threadIdx.x % 32;
  const unsigned m = SHRINK_BALLOT(lane % 3 == 0 || threadIdx.x == 33);
  if (lane == 0) masks[threadIdx.x / 32] = m;
}

SHRINK_GLOBAL void atomics_kernel(unsigned* u, int* i, float* f, unsigned long long* ull,
                                  unsigned* mx) {
  const unsigned id = blockIdx.x * blockDim.x + threadIdx.x;
  SHRINK_ATOMIC_ADD(u, 1u);
  SHRINK_ATOMIC_ADD(i, -1);
  SHRINK_ATOMIC_ADD(f, 0.5f);  // sums stay exact in float (multiples of 0.5 below 2^23)
  SHRINK_ATOMIC_ADD(ull, 1ull << 33);
  SHRINK_ATOMIC_MAX_U32(mx, id * 7u % 1001u);
}

// Every thread claims a distinct slot by atomic increment: a lost update shows as a duplicate.
SHRINK_GLOBAL void claim_slots_kernel(unsigned* counter, unsigned* slots) {
  SHRINK_SHARED_ARRAY(unsigned, local, 1);
  if (threadIdx.x == 0) local[0] = 0;
  SHRINK_SYNCTHREADS();
  const unsigned mine = SHRINK_ATOMIC_ADD(&local[0], 1u);
  const unsigned global = SHRINK_ATOMIC_ADD(counter, 1u);
  slots[global] = blockIdx.x * 1000u + mine;
}

SHRINK_GLOBAL void index_2d_kernel(unsigned* out) {
  const unsigned x = blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned y = blockIdx.y * blockDim.y + threadIdx.y;
  const unsigned width = gridDim.x * blockDim.x;
  out[y * width + x] = (threadIdx.y * blockDim.x + threadIdx.x) | (blockIdx.y << 16) | (blockIdx.x << 24);
}

// Thread 5 of block 1 throws before a barrier the others wait at, and before a warp exchange its
// warp-mates wait at.
SHRINK_GLOBAL void throwing_kernel(float* out) {
  if (blockIdx.x == 1 && threadIdx.x == 5) throw std::runtime_error("boom in thread 5");
  SHRINK_SYNCTHREADS();
  float v = SHRINK_SHFL_XOR(1.f, 1);
  SHRINK_SYNCTHREADS();
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

SHRINK_GLOBAL void uninitialised_shared_kernel(float* out) {
  SHRINK_SHARED_ARRAY(float, tile, 32);
  out[threadIdx.x] = tile[threadIdx.x];  // never written: the emulator fills shared with NaN
}

SHRINK_GLOBAL void noop_kernel(int) {}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_emulator)

BOOST_AUTO_TEST_CASE(syncthreads_orders_shared_memory) {
  const unsigned blocks = 3, threads = 256;
  std::vector<float> in(blocks * threads), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  for (int rounds : {1, 2, 7}) {
    with_deadline("reverse", [&] {
      SHRINK_LAUNCH(reverse_rounds_kernel, Dim{blocks, 1, 1}, Dim{threads, 1, 1}, 0, in.data(), out.data(), rounds);
    });
    for (unsigned b = 0; b < blocks; ++b)
      for (unsigned t = 0; t < threads; ++t) {
        const unsigned src = rounds % 2 ? threads - 1 - t : t;
        BOOST_REQUIRE_MESSAGE(out[b * threads + t] == in[b * threads + src],
                              "rounds " << rounds << " block " << b << " thread " << t);
      }
  }
}

BOOST_AUTO_TEST_CASE(dynamic_shared_memory) {
  const unsigned blocks = 2, threads = 96;
  std::vector<float> in(blocks * threads), out(in.size());
  std::vector<int> ids(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i) - 50.f;
  with_deadline("dynamic shared", [&] {
    SHRINK_LAUNCH(dynamic_shared_kernel, Dim{blocks, 1, 1}, Dim{threads, 1, 1},
                  threads * (sizeof(float) + sizeof(int)), in.data(), out.data(), ids.data());
  });
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t) {
      BOOST_TEST(out[b * threads + t] == 2.f * in[b * threads + (t + 1) % threads]);
      BOOST_TEST(ids[b * threads + t] == static_cast<int>((t + 1) % threads));
    }
  // More than a device's shared memory per block is a launch error.
  BOOST_CHECK_THROW(SHRINK_LAUNCH(noop_kernel, Dim{1, 1, 1}, Dim{32, 1, 1}, 300 * 1024, 0), shrink::Error);
}

BOOST_AUTO_TEST_CASE(shared_memory_starts_as_nan) {
  std::vector<float> out(32, 0.f);
  with_deadline("uninitialised", [&] {
    SHRINK_LAUNCH(uninitialised_shared_kernel, Dim{1, 1, 1}, Dim{32, 1, 1}, 0, out.data());
  });
  for (float v : out) BOOST_TEST(std::isnan(v));
}

BOOST_AUTO_TEST_CASE(warp_shuffles) {
  const unsigned threads = 128;
  std::vector<int> xor_total(threads), down_total(threads / 32);
  with_deadline("shuffle", [&] {
    SHRINK_LAUNCH(shuffle_kernel, Dim{1, 1, 1}, Dim{threads, 1, 1}, 0, xor_total.data(), down_total.data());
  });
  for (unsigned t = 0; t < threads; ++t) {
    const int w = static_cast<int>(t / 32);
    const int total = 32 * (32 * w + 1) + 31 * 32 / 2;  // sum of (t + 1) over the warp
    BOOST_TEST(xor_total[t] == total, "lane " << t);
    if (t % 32 == 0) BOOST_TEST(down_total[w] == total, "warp " << w);
  }
}

BOOST_AUTO_TEST_CASE(ballot_including_partial_warp) {
  // 40 threads: a full warp and a warp of 8 lanes, whose ballot has only its 8 low bits.
  std::vector<unsigned> masks(2, 0xdeadbeefu);
  with_deadline("ballot", [&] { SHRINK_LAUNCH(ballot_kernel, Dim{1, 1, 1}, Dim{40, 1, 1}, 0, masks.data()); });
  unsigned full = 0;
  for (unsigned l = 0; l < 32; l += 3) full |= 1u << l;
  BOOST_TEST(masks[0] == full);
  BOOST_TEST(masks[1] == ((full & 0xffu) | (1u << 1)));  // thread 33 is lane 1 of warp 1
}

BOOST_AUTO_TEST_CASE(atomics_from_every_thread) {
  const unsigned blocks = 4, threads = 256, total = blocks * threads;
  unsigned u = 0, mx = 0;
  int i = 0;
  float f = 0.f;
  unsigned long long ull = 0;
  with_deadline("atomics", [&] {
    SHRINK_LAUNCH(atomics_kernel, Dim{blocks, 1, 1}, Dim{threads, 1, 1}, 0, &u, &i, &f, &ull, &mx);
  });
  unsigned want_max = 0;
  for (unsigned id = 0; id < total; ++id) want_max = std::max(want_max, id * 7u % 1001u);
  BOOST_TEST(u == total);
  BOOST_TEST(i == -static_cast<int>(total));
  BOOST_TEST(f == 0.5f * total);
  BOOST_TEST(ull == static_cast<unsigned long long>(total) << 33);
  BOOST_TEST(mx == want_max);

  unsigned counter = 0;
  std::vector<unsigned> slots(total, ~0u);
  with_deadline("claim", [&] {
    SHRINK_LAUNCH(claim_slots_kernel, Dim{blocks, 1, 1}, Dim{threads, 1, 1}, 0, &counter, slots.data());
  });
  std::sort(slots.begin(), slots.end());
  BOOST_TEST((std::adjacent_find(slots.begin(), slots.end()) == slots.end()));  // no slot twice
  for (unsigned b = 0; b < blocks; ++b) {  // each block's shared counter handed out 0..255
    BOOST_TEST(slots[b * threads] == b * 1000u);
    BOOST_TEST(slots[b * threads + threads - 1] == b * 1000u + threads - 1);
  }
}

BOOST_AUTO_TEST_CASE(two_dimensional_blocks_and_grid) {
  const Dim grid{3, 2, 1}, block{16, 8, 1};
  const unsigned width = grid.x * block.x, height = grid.y * block.y;
  std::vector<unsigned> out(width * height, ~0u);
  with_deadline("2-D", [&] { SHRINK_LAUNCH(index_2d_kernel, grid, block, 0, out.data()); });
  for (unsigned y = 0; y < height; ++y)
    for (unsigned x = 0; x < width; ++x) {
      const unsigned want = ((y % block.y) * block.x + x % block.x) | ((y / block.y) << 16) | ((x / block.x) << 24);
      BOOST_REQUIRE_MESSAGE(out[y * width + x] == want, "x " << x << " y " << y);
    }
}

BOOST_AUTO_TEST_CASE(throwing_thread_is_an_error_not_a_hang) {
  std::vector<float> out(3 * 64, 0.f);
  bool threw = false;
  with_deadline("throw", [&] {
    try {
      SHRINK_LAUNCH(throwing_kernel, Dim{3, 1, 1}, Dim{64, 1, 1}, 0, out.data());
    } catch (const shrink::Error& e) {
      threw = true;
      const std::string msg = e.what();
      BOOST_TEST(msg.find("throwing_kernel") != std::string::npos, msg);
      BOOST_TEST(msg.find("boom in thread 5") != std::string::npos, msg);
      BOOST_TEST(msg.find("(1, 0, 0)") != std::string::npos, msg);  // names the block
    }
  });
  BOOST_TEST(threw);
  // The emulator is usable afterwards.
  std::vector<int> xor_total(32), down_total(1);
  with_deadline("after throw", [&] {
    SHRINK_LAUNCH(shuffle_kernel, Dim{1, 1, 1}, Dim{32, 1, 1}, 0, xor_total.data(), down_total.data());
  });
  BOOST_TEST(down_total[0] == 32 * 33 / 2);
}

BOOST_AUTO_TEST_CASE(invalid_launch_configurations) {
  BOOST_CHECK_THROW(SHRINK_LAUNCH(noop_kernel, Dim{1, 1, 1}, Dim{0, 1, 1}, 0, 0), shrink::Error);
  BOOST_CHECK_THROW(SHRINK_LAUNCH(noop_kernel, Dim{1, 1, 1}, Dim{1025, 1, 1}, 0, 0), shrink::Error);
  BOOST_CHECK_THROW(SHRINK_LAUNCH(noop_kernel, Dim{1, 1, 1}, Dim{33, 32, 1}, 0, 0), shrink::Error);
  BOOST_CHECK_THROW(SHRINK_LAUNCH(noop_kernel, Dim{0, 1, 1}, Dim{32, 1, 1}, 0, 0), shrink::Error);
  BOOST_CHECK_NO_THROW(SHRINK_LAUNCH(noop_kernel, Dim{1, 1, 1}, Dim{32, 32, 1}, 0, 0));  // 1024
}

BOOST_AUTO_TEST_SUITE_END()
