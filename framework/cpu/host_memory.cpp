#include "framework/cpu/host_memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

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

}  // namespace

void* host_allocate(size_t nbytes) {
  const size_t rounded = (std::max<size_t>(nbytes, 1) + kAlign - 1) / kAlign * kAlign;
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
  if (usable >= kLargeBytes)
    large_blocks().put(p, usable);
  else
    std::free(p);
}

size_t host_cached_bytes() { return large_blocks().cached(); }

}  // namespace shrink::cpu
