#include "cuda/emu/emulator.h"

#include <exception>
#include <sstream>
#include <thread>

#include "framework/core/error.h"

namespace shrink::emu {

struct Block {
  Block(int threads, size_t dynamic_bytes) : barrier(threads), dynamic(dynamic_bytes, std::byte{0xFF}) {}
  std::barrier<> barrier;
  std::mutex mu;
  std::vector<std::vector<std::byte>> static_shared;  // one per SHRINK_SHARED_ARRAY, in order
  std::vector<std::byte> dynamic;
  struct Warp {
    std::unique_ptr<std::barrier<>> barrier;
    uint32_t lanes[32];
    int width = 32;
  };
  std::vector<Warp> warps;
};

namespace {
thread_local ThreadContext t_ctx;
std::mutex g_launched_mu;
std::set<std::string> g_launched;

// Emulated threads are real threads, created once and reused for every block: creating a
// thousand threads per block would dominate the tests' run time. They are std::threads, not
// std::jthreads: nothing may ask an emulated thread to stop early while others of its block
// wait for it at a barrier.
//
// Hand-off without a shared mutex: each worker sleeps on its own 32-bit atomic (a futex), the
// launching thread bumps the first n of them, and the last worker to finish wakes the launcher
// through a countdown. A condition variable with notify_all made every worker reacquire one
// mutex twice per block, a convoy that cost ~3 ms per 256-thread block on a 2-core machine.
class Workers {
 public:
  ~Workers() {
    quit_.store(true);
    for (auto& s : slots_) {
      s->go.fetch_add(1, std::memory_order_release);
      s->go.notify_one();
    }
    for (auto& t : threads_) t.join();
  }
  // Runs fn(t) for t in [0, n) on n distinct threads and waits for all of them.
  void run(unsigned n, const std::function<void(unsigned)>& fn) {
    while (threads_.size() < n) {
      const unsigned id = static_cast<unsigned>(threads_.size());
      slots_.push_back(std::make_unique<Slot>());
      Slot* slot = slots_.back().get();
      threads_.emplace_back([this, id, slot] { loop(id, slot); });
    }
    fn_ = &fn;  // published to worker i by the release increment of its slot
    pending_.store(n, std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
      slots_[i]->go.fetch_add(1, std::memory_order_release);
      slots_[i]->go.notify_one();
    }
    for (unsigned p; (p = pending_.load(std::memory_order_acquire)) != 0;) pending_.wait(p);
    fn_ = nullptr;
  }

 private:
  // 32-bit so that std::atomic::wait is a plain futex; one cache line each so that waking one
  // worker does not disturb its neighbours.
  struct alignas(64) Slot {
    std::atomic<unsigned> go{0};
  };

  void loop(unsigned id, Slot* slot) {
    unsigned seen = 0;
    for (;;) {
      slot->go.wait(seen, std::memory_order_acquire);
      seen = slot->go.load(std::memory_order_acquire);
      if (quit_.load()) return;
      (*fn_)(id);
      // acq_rel: the launcher, woken by the last decrement, sees every worker's writes.
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Slot>> slots_;
  const std::function<void(unsigned)>* fn_ = nullptr;
  std::atomic<unsigned> pending_{0};
  std::atomic<bool> quit_{false};
};

void run_on_workers(unsigned n, const std::function<void(unsigned)>& fn) {
  static Workers workers;
  static std::mutex launch_mu;  // one emulated launch at a time
  std::lock_guard<std::mutex> lk(launch_mu);
  workers.run(n, fn);
}

unsigned linear_id(const ThreadContext& c) {
  return c.thread_idx.x + c.thread_idx.y * c.block_dim.x +
         c.thread_idx.z * c.block_dim.x * c.block_dim.y;
}

Block& block() {
  SHRINK_CHECK(t_ctx.block != nullptr, "CUDA emulation: kernel intrinsic called outside a launch");
  return *t_ctx.block;
}

// Every lane publishes a 32-bit word, the warp meets, each lane reads what it needs, and the
// warp meets again so the buffer can be reused by the next exchange.
template <typename Read>
uint32_t exchange(uint32_t mine, Read read) {
  Block& b = block();
  unsigned id = linear_id(t_ctx);
  Block::Warp& w = b.warps[id / 32];
  unsigned lane = id % 32;
  w.lanes[lane] = mine;
  w.barrier->arrive_and_wait();
  uint32_t out = read(w, lane);
  w.barrier->arrive_and_wait();
  return out;
}

template <typename T>
T shfl_down_impl(T v, unsigned delta) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  uint32_t r = exchange(bits, [delta](Block::Warp& w, unsigned lane) {
    unsigned src = lane + delta;
    return src < static_cast<unsigned>(w.width) ? w.lanes[src] : w.lanes[lane];
  });
  T out;
  std::memcpy(&out, &r, 4);
  return out;
}

template <typename T>
T shfl_xor_impl(T v, unsigned mask) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  uint32_t r = exchange(bits, [mask](Block::Warp& w, unsigned lane) {
    unsigned src = lane ^ mask;
    return src < static_cast<unsigned>(w.width) ? w.lanes[src] : w.lanes[lane];
  });
  T out;
  std::memcpy(&out, &r, 4);
  return out;
}
}  // namespace

ThreadContext& ctx() { return t_ctx; }

void syncthreads() { block().barrier.arrive_and_wait(); }

void* shared_bytes(size_t bytes) {
  Block& b = block();
  int slot = t_ctx.shared_slot++;
  std::lock_guard<std::mutex> lk(b.mu);
  if (static_cast<int>(b.static_shared.size()) <= slot) {
    // Filled with 0xFF (NaN as float) so a kernel that reads shared memory before writing it
    // fails its test instead of passing by luck.
    b.static_shared.resize(slot + 1);
    b.static_shared[slot].assign(bytes, std::byte{0xFF});
  }
  SHRINK_CHECK(b.static_shared[slot].size() == bytes, "CUDA emulation: shared array ", slot,
               " declared with different sizes by different threads");
  return b.static_shared[slot].data();
}

void* dynamic_shared_bytes() { return block().dynamic.data(); }

float shfl_down(float v, unsigned d) { return shfl_down_impl(v, d); }
int shfl_down(int v, unsigned d) { return shfl_down_impl(v, d); }
unsigned shfl_down(unsigned v, unsigned d) { return shfl_down_impl(v, d); }
float shfl_xor(float v, unsigned m) { return shfl_xor_impl(v, m); }
int shfl_xor(int v, unsigned m) { return shfl_xor_impl(v, m); }

unsigned ballot(bool pred) {
  return exchange(pred ? 1u : 0u, [](Block::Warp& w, unsigned) {
    unsigned mask = 0;
    for (int i = 0; i < w.width; ++i) mask |= (w.lanes[i] & 1u) << i;
    return mask;
  });
}

float atomic_add(float* addr, float v) { return std::atomic_ref<float>(*addr).fetch_add(v); }
unsigned atomic_add(unsigned* addr, unsigned v) { return std::atomic_ref<unsigned>(*addr).fetch_add(v); }
int atomic_add(int* addr, int v) { return std::atomic_ref<int>(*addr).fetch_add(v); }
unsigned long long atomic_add(unsigned long long* addr, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*addr).fetch_add(v);
}
unsigned atomic_max(unsigned* addr, unsigned v) {
  std::atomic_ref<unsigned> a(*addr);
  unsigned old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

void launch(const char* kernel_name, Dim3 grid, Dim3 block_dim, size_t dynamic_shared,
            const std::function<void()>& body) {
  const unsigned threads = block_dim.x * block_dim.y * block_dim.z;
  SHRINK_CHECK(threads >= 1 && threads <= 1024, kernel_name, ": block of ", threads,
               " threads (must be 1..1024)");
  SHRINK_CHECK(grid.x >= 1 && grid.y >= 1 && grid.z >= 1, kernel_name, ": empty grid");
  SHRINK_CHECK(dynamic_shared <= 228 * 1024, kernel_name, ": ", dynamic_shared,
               " bytes of dynamic shared memory");
  {
    std::lock_guard<std::mutex> lk(g_launched_mu);
    g_launched.insert(kernel_name);
  }
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        Block blk(static_cast<int>(threads), dynamic_shared);
        const unsigned nwarps = (threads + 31) / 32;
        blk.warps.resize(nwarps);
        for (unsigned w = 0; w < nwarps; ++w) {
          int width = static_cast<int>(std::min(32u, threads - w * 32));
          blk.warps[w].width = width;
          blk.warps[w].barrier = std::make_unique<std::barrier<>>(width);
        }
        std::exception_ptr error;
        std::mutex error_mu;
        run_on_workers(threads, [&](unsigned t) {
          t_ctx.block = &blk;
          t_ctx.block_dim = block_dim;
          t_ctx.grid_dim = grid;
          t_ctx.block_idx = Dim3{bx, by, bz};
          t_ctx.thread_idx = Dim3{t % block_dim.x, (t / block_dim.x) % block_dim.y,
                                  t / (block_dim.x * block_dim.y)};
          t_ctx.shared_slot = 0;
          try {
            body();
          } catch (...) {
            std::lock_guard<std::mutex> lk(error_mu);
            if (!error) error = std::current_exception();
            // Leave the barriers so the threads still running cannot wait for us forever.
            blk.barrier.arrive_and_drop();
            blk.warps[t / 32].barrier->arrive_and_drop();
          }
          t_ctx.block = nullptr;
        });
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            fail(kernel_name, ": emulated block (", bx, ", ", by, ", ", bz, ") failed: ", e.what());
          }
        }
      }
}

std::set<std::string> launched_kernels() {
  std::lock_guard<std::mutex> lk(g_launched_mu);
  return g_launched;
}

}  // namespace shrink::emu
