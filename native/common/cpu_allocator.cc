#include "common/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tssl {
namespace {

// Every block carries a 64-byte header (LibTorch's CPU alignment) holding its size class, so the
// deleter needs only the data pointer (which makes raw_allocate/raw_deallocate work too). The set of
// live blocks tells ours from pointers another allocator made (ideep's raw_deallocate goes through
// whichever CPU allocator is current): those are freed as LibTorch's default allocator would.
constexpr size_t kHeader = 64;
constexpr size_t kMinCached = 64 * 1024;

size_t sizeClass(size_t n) {
  if (n < kMinCached) return n;
  if (n > (size_t(1) << 62)) return n;  // absurd sizes: let posix_memalign fail
  size_t p = 1;
  while (p < n) p <<= 1;
  const size_t granule = std::max<size_t>(4096, p / 16);
  return (n + granule - 1) / granule * granule;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;  // size class → blocks (header addresses)
  std::unordered_set<void*> live;                       // data pointers handed out and not yet freed
  uint64_t cap = 0, cached = 0, hits = 0, misses = 0;
  bool installed = false;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during static destruction
  return *c;
}

void* systemAlloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kHeader, bytes) != 0) return nullptr;
  return p;
}

// Frees cached blocks of other size classes until `bytes` are returned (caller holds the lock); keeps a
// miss from growing in-use + cached memory while the cache holds blocks nobody asks for.
void evictLocked(Cache& c, size_t bytes, std::vector<void*>& out) {
  size_t freed = 0;
  for (auto it = c.free.begin(); it != c.free.end() && freed < bytes;) {
    while (!it->second.empty() && freed < bytes) {
      out.push_back(it->second.back());
      it->second.pop_back();
      freed += it->first;
      c.cached -= it->first;
    }
    it = it->second.empty() ? c.free.erase(it) : std::next(it);
  }
}

void freeBlock(void* data) {
  if (data == nullptr) return;
  Cache& c = cache();
  char* base = static_cast<char*>(data) - kHeader;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.live.erase(data) == 0) {
      c10::free_cpu(data);  // not ours: made by LibTorch's default allocator before this one was installed
      return;
    }
    size_t cls;
    std::memcpy(&cls, base, sizeof cls);
    if (cls >= kMinCached && c.cached + cls <= c.cap) {
      c.free[cls].push_back(base);
      c.cached += cls;
      return;
    }
  }
  std::free(base);
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  // LibTorch 1.x declares allocate() const, 2.3+ non-const: define both, whichever the base declares
  // is the override.
  c10::DataPtr allocate(size_t n) const { return make(n); }
  c10::DataPtr allocate(size_t n) { return make(n); }
  // Pure virtual in LibTorch 2.3+; an ordinary member before.
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }
  c10::DeleterFnPtr raw_deleter() const override { return &freeBlock; }

 private:
  static c10::DataPtr make(size_t n) {
    const size_t cls = sizeClass(n);
    std::vector<void*> evicted;
    Cache& c = cache();
    if (cls >= kMinCached) {
      std::lock_guard<std::mutex> lock(c.mu);
      auto it = c.free.find(cls);
      if (it != c.free.end() && !it->second.empty()) {
        void* base = it->second.back();
        it->second.pop_back();
        c.cached -= cls;
        ++c.hits;
        // The hot path: registered under the same lock.
        void* data = static_cast<char*>(base) + kHeader;
        c.live.insert(data);
        return {data, data, &freeBlock, c10::Device(c10::DeviceType::CPU)};
      }
      ++c.misses;
      // Past half the cap, a miss returns as many bytes of other classes to the system. (Below it,
      // evicting would only turn the next step's hits into misses: a steady loop reuses every block.)
      if (c.cached >= c.cap / 2) evictLocked(c, cls, evicted);
    }
    for (void* b : evicted) std::free(b);
    if (cls > SIZE_MAX - kHeader) throw std::bad_alloc();
    void* base = systemAlloc(kHeader + cls);
    if (base == nullptr) {
      // Out of memory: give the cache back and try once more before failing like LibTorch does.
      releaseCpuCache();
      base = systemAlloc(kHeader + cls);
    }
    if (base == nullptr) throw std::bad_alloc();
    std::memcpy(base, &cls, sizeof cls);
    void* data = static_cast<char*>(base) + kHeader;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      c.live.insert(data);
    }
    return {data, data, &freeBlock, c10::Device(c10::DeviceType::CPU)};
  }
};

// The memory this process may use: physical memory, or a smaller cgroup (container) limit.
uint64_t memoryLimit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  uint64_t limit = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : (uint64_t(8) << 30);
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream f(path);
    unsigned long long v = 0;
    if (f >> v && v > 0 && v < limit) limit = v;  // "max" (no limit) fails to parse and is skipped
  }
  return limit;
}

}  // namespace

void installCpuCache(uint64_t capBytes) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.cap = capBytes;
    if (c.installed || capBytes == 0) return;
    c.installed = true;
  }
  static CachingCpuAllocator* alloc = new CachingCpuAllocator();
  // Priority above the default's 0, so later registrations at default priority do not displace it.
  c10::SetCPUAllocator(alloc, /*priority=*/1);
}

void installCpuCacheFromEnv() {
  uint64_t cap = std::min<uint64_t>(memoryLimit() / 4, uint64_t(8) << 30);
  const char* env = std::getenv("TORCH_SSL_CPU_CACHE_MB");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long long mb = std::strtoll(env, &end, 10);
    // A malformed or negative value keeps the default; a size is capped at the memory limit.
    if (end != env && *end == '\0' && mb >= 0) cap = std::min<uint64_t>(uint64_t(mb) << 20, memoryLimit());
  }
  installCpuCache(cap);
}

void releaseCpuCache() {
  std::vector<void*> blocks;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto& kv : c.free) blocks.insert(blocks.end(), kv.second.begin(), kv.second.end());
    c.free.clear();
    c.cached = 0;
  }
  for (void* b : blocks) std::free(b);
}

CpuCacheStats cpuCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  CpuCacheStats s;
  s.installed = c.installed;
  s.capBytes = c.cap;
  s.cachedBytes = c.cached;
  s.hits = c.hits;
  s.misses = c.misses;
  return s;
}

}  // namespace tssl
