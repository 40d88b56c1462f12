#include "framework/cpu/host_memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace shrink::cpu {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kLargeBytes = size_t{1} << 20;
constexpr size_t kCacheBytes = size_t{1} << 30;
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeAdviceBytes = size_t{8} << 20;

// Only the whole huge pages inside the block are advised; the kernel may ignore the advice.
void advise_huge_pages(void* p, size_t n) {
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / kHugePage * kHugePage;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// Freed large blocks by usable size. Large blocks are rare (tensors of 256 Ki floats and more),
// so one mutex is enough.
class LargeBlocks {
 public:
  void* take(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(n);
    if (it == free_.end() || it->first > n + n / 8) return nullptr;
    void* p = it->second.block;
    cached_ -= it->first;
    free_.erase(it);
    return p;
  }

  void put(void* p, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.emplace(n, Entry{p, ++clock_});
    cached_ += n;
    while (cached_ > kCacheBytes) {
      auto oldest = free_.begin();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->second.freed_at < oldest->second.freed_at) oldest = it;
      cached_ -= oldest->first;
      std::free(oldest->second.block);
      free_.erase(oldest);
    }
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

 private:
  struct Entry {
    void* block;
    uint64_t freed_at;
  };
  std::mutex mu_;
  std::multimap<size_t, Entry> free_;
  size_t cached_ = 0;
  uint64_t clock_ = 0;
};

// Never destroyed: tensors with static lifetime may be freed after any static destructor ran.
LargeBlocks& large_blocks() {
  static LargeBlocks* blocks = new LargeBlocks;
  return *blocks;
}

// Small blocks (scalars, per-channel vectors, the 1-element tensors of per-op overhead): a free
// list per 64-byte size class on each thread. aligned_alloc's small path splits chunks and frees
// the remainders into glibc's bins, which made malloc/free half of a small op's cost.
constexpr size_t kSmallClasses = 8;  // up to 512 bytes
constexpr size_t kSmallKept = 256;   // blocks kept per class and thread

struct SmallBlocks {
  std::vector<void*> free[kSmallClasses + 1];
  ~SmallBlocks() {
    gone = true;
    for (auto& list : free)
      for (void* p : list) std::free(p);
  }
  static thread_local bool gone;  // blocks freed during thread exit go straight back
};
thread_local bool SmallBlocks::gone = false;

SmallBlocks& small_blocks() {
  thread_local SmallBlocks blocks;
  return blocks;
}

}  // namespace

void* host_allocate(size_t nbytes) {
  const size_t rounded = (std::max<size_t>(nbytes, 1) + kAlign - 1) / kAlign * kAlign;
  if (rounded <= kSmallClasses * kAlign && !SmallBlocks::gone) {
    std::vector<void*>& list = small_blocks().free[rounded / kAlign];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      return p;
    }
  }
  if (rounded >= kLargeBytes)
    if (void* p = large_blocks().take(rounded)) return p;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw std::bad_alloc();
  if (rounded >= kHugeAdviceBytes) advise_huge_pages(p, rounded);
  return p;
}

void host_free(void* p) {
  if (!p) return;
  const size_t usable = malloc_usable_size(p);
  if (usable >= kLargeBytes) {
    large_blocks().put(p, usable);
    return;
  }
  // A block serves any request up to its usable size, rounded down to the class size.
  const size_t cls = std::min(usable / kAlign, kSmallClasses);
  if (cls >= 1 && usable < (kSmallClasses + 1) * kAlign && !SmallBlocks::gone) {
    std::vector<void*>& list = small_blocks().free[cls];
    if (list.size() < kSmallKept) {
      list.push_back(p);
      return;
    }
  }
  std::free(p);
}

size_t host_cached_bytes() { return large_blocks().cached(); }

}  // namespace shrink::cpu
