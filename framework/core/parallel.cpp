#include "framework/core/parallel.h"

#include <algorithm>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SHRINK_CPU_RELAX() _mm_pause()
#else
#define SHRINK_CPU_RELAX() ((void)0)
#endif
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace shrink {
namespace {

thread_local bool t_in_parallel = false;

int default_threads() {
  if (const char* env = std::getenv("SHRINK_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 64u));
}

// Workers wait for a generation counter; the caller runs its share of the chunks itself.
// Both sides spin briefly before sleeping: a training step issues thousands of short parallel
// regions, and a futex wake-up per region costs more than the work in many of them.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int n) {
    stop();
    size_ = std::max(1, n);
    quit_ = false;
    // New workers start at the current generation, or they would take the last (finished) run
    // for a new one.
    const uint64_t current = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i, current] { loop(i, current); });
  }

  void run(int chunks, const std::function<void(int)>& task) {
    task_ = &task;
    chunks_ = chunks;
    pending_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_parallel = true;
    for (int c = 0; c < chunks; c += size_) task(c);
    t_in_parallel = false;
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < kSpins) {
        SHRINK_CPU_RELAX();
        continue;
      }
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [this] { return pending_.load(std::memory_order_acquire) == 0; });
      break;
    }
    task_ = nullptr;
  }

 private:
  static constexpr int kSpins = 2000;  // with a pause each: tens of microseconds

  void loop(int id, uint64_t seen) {
    for (;;) {
      for (int spin = 0; generation_.load(std::memory_order_acquire) == seen && !quit_; ++spin) {
        if (spin < kSpins) {
          SHRINK_CPU_RELAX();
          continue;
        }
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || generation_.load(std::memory_order_acquire) != seen; });
        break;
      }
      if (quit_) return;
      seen = generation_.load(std::memory_order_acquire);
      const std::function<void(int)>* task = task_;
      const int chunks = chunks_;
      t_in_parallel = true;
      for (int c = id; c < chunks; c += size_) (*task)(c);
      t_in_parallel = false;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;
  int chunks_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false};
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

std::mutex& run_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(run_mutex());
  pool().resize(n);
}

void parallel_chunks(int64_t n, int chunks,
                     const std::function<void(int, int64_t, int64_t)>& fn) {
  auto body = [&](int c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    fn(c, b, e);
  };
  if (chunks <= 1 || t_in_parallel || pool().size() == 1) {
    for (int c = 0; c < chunks; ++c) body(c);
    return;
  }
  std::lock_guard<std::mutex> lk(run_mutex());
  pool().run(chunks, body);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int t = num_threads();
  if (t <= 1 || t_in_parallel || n < 2 * std::max<int64_t>(grain, 1)) {
    fn(0, n);
    return;
  }
  int chunks = static_cast<int>(std::min<int64_t>(t, n / std::max<int64_t>(grain, 1)));
  parallel_chunks(n, chunks, [&](int, int64_t b, int64_t e) {
    if (b < e) fn(b, e);
  });
}

}  // namespace shrink
