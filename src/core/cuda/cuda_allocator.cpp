// Stream-ordered caching allocator for CUDA memory.
//
// Each block belongs to the stream that was current when it was allocated. Freeing a block puts it back in
// that stream's free pool at once: later work on the same stream is ordered after every earlier use, so
// no synchronisation is needed. A block also used on other streams (record_stream) waits in `pending_`
// until events recorded on those streams have completed.
//
// Sizes are rounded (512 B below 1 MiB, 2 MiB above: the driver's large-page granularity) so that a
// training step that repeats its allocation pattern hits the cache exactly; after the first step no
// cudaMalloc happens (stats().num_system_allocs stops growing). When cudaMalloc fails, the cache is emptied
// and the request retried once before "out of memory" is reported with the allocator's statistics.
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda_api.h"
#include "core/no_destructor.h"

namespace nsa {
namespace {

thread_local int t_pool = 0;  // the private pool this thread allocates from (0: shared)
std::atomic<int> g_next_pool{1};

constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t{2} << 20;

size_t round_size(size_t n) {
  const size_t r = n <= kSmallLimit ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

// A cached block may serve a request if it wastes at most a quarter of it.
bool fits(size_t block, size_t request) { return block == request || block - request <= request / 4; }

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device) {}

  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    const size_t size = round_size(nbytes);
    auto stream = static_cast<cudaStream_t>(cuda::current_stream());
    std::lock_guard<std::mutex> lock(mu_);
    stats_.num_allocs++;
    if (t_pool == 0) collect_pending();  // event queries are not allowed while capturing

    const int pool = t_pool;
    void* p = take_cached({stream, pool}, size);
    if (!p) p = system_alloc(size);
    Block& b = blocks_.at(p);
    b.stream = stream;
    b.pool = pool;
    b.in_use = true;
    b.used_on.clear();
    stats_.allocated_bytes += static_cast<int64_t>(b.size);
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    return p;
  }

  void deallocate(void* p) override {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(p);
    if (it == blocks_.end() || !it->second.in_use) return;  // not ours: ignore rather than corrupt the pool
    Block& b = it->second;
    b.in_use = false;
    if (released_pools_.count(b.pool)) b.pool = 0;
    stats_.allocated_bytes -= static_cast<int64_t>(b.size);
    if (b.used_on.empty()) {
      free_[{b.stream, b.pool}].emplace(b.size, p);
      return;
    }
    Pending pending{p, {}};
    for (cudaStream_t s : b.used_on) {
      cudaEvent_t e = take_event();
      NSA_CUDA_CHECK(cudaEventRecord(e, s));
      pending.events.push_back(e);
    }
    pending_.push_back(std::move(pending));
  }

  void record_stream(void* p, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(p);
    NSA_CHECK(it != blocks_.end() && it->second.in_use,
              "[cuda allocator] record_stream on a pointer it does not own");
    if (s != it->second.stream) it->second.used_on.push_back(s);
  }

  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void reset_peak_stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
    stats_.peak_reserved_bytes = stats_.reserved_bytes;
  }

  // Hands every free block of `pool` to the shared cache; blocks still in use follow when freed.
  void release_pool(int pool) {
    std::lock_guard<std::mutex> lock(mu_);
    released_pools_.insert(pool);
    for (auto it = free_.begin(); it != free_.end();) {
      if (it->first.second != pool) {
        ++it;
        continue;
      }
      for (auto& [size, p] : it->second) {
        blocks_.at(p).pool = 0;
        free_[{it->first.first, 0}].emplace(size, p);
      }
      it = free_.erase(it);
    }
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached();
  }

 private:
  using PoolKey = std::pair<cudaStream_t, int>;  // (stream, private pool id; 0 = shared)

  struct Block {
    size_t size = 0;
    cudaStream_t stream = nullptr;
    int pool = 0;
    bool in_use = false;
    std::vector<cudaStream_t> used_on;  // other streams that used it (record_stream)
  };
  struct Pending {
    void* ptr;
    std::vector<cudaEvent_t> events;
  };

  void* take_cached(const PoolKey& key, size_t size) {
    auto pool = free_.find(key);
    if (pool == free_.end()) return nullptr;
    auto it = pool->second.lower_bound(size);
    if (it == pool->second.end() || !fits(it->first, size)) return nullptr;
    void* p = it->second;
    pool->second.erase(it);
    return p;
  }

  void* system_alloc(size_t size) {
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached();
      stats_.num_cache_flushes++;
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      NSA_FAIL("[cuda allocator] out of memory on cuda:", device_, " allocating ", size, " bytes (",
               stats_.allocated_bytes, " bytes in live tensors, ", stats_.reserved_bytes,
               " reserved): ", cudaGetErrorString(err));
    }
    blocks_[p] = Block{size, nullptr, 0, false, {}};
    stats_.num_system_allocs++;
    stats_.reserved_bytes += static_cast<int64_t>(size);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    return p;
  }

  // Moves blocks whose cross-stream uses have finished into their free pool.
  void collect_pending() {
    for (size_t i = 0; i < pending_.size();) {
      bool done = true;
      for (cudaEvent_t e : pending_[i].events) {
        cudaError_t q = cudaEventQuery(e);
        if (q == cudaErrorNotReady) {
          (void)cudaGetLastError();
          done = false;
          break;
        }
        NSA_CUDA_CHECK(q);
      }
      if (!done) {
        ++i;
        continue;
      }
      for (cudaEvent_t e : pending_[i].events) events_.push_back(e);
      Block& b = blocks_.at(pending_[i].ptr);
      if (released_pools_.count(b.pool)) b.pool = 0;
      free_[{b.stream, b.pool}].emplace(b.size, pending_[i].ptr);
      pending_[i] = std::move(pending_.back());
      pending_.pop_back();
    }
  }

  // Waits for the device, then returns every unused block to the driver.
  void release_cached() {
    NSA_CUDA_CHECK(cudaDeviceSynchronize());
    collect_pending();
    for (auto& [key, pool] : free_) {
      if (key.second != 0) continue;  // a live graph's blocks stay
      for (auto& [size, p] : pool) {
        NSA_CUDA_CHECK(cudaFree(p));
        blocks_.erase(p);
        stats_.reserved_bytes -= static_cast<int64_t>(size);
      }
      pool.clear();
    }
  }

  cudaEvent_t take_event() {
    if (!events_.empty()) {
      cudaEvent_t e = events_.back();
      events_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    NSA_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }

  int device_;
  mutable std::mutex mu_;
  std::unordered_map<void*, Block> blocks_;               // every block we hold
  std::map<PoolKey, std::multimap<size_t, void*>> free_;  // per (stream, pool), by size
  std::set<int> released_pools_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> events_;  // recycled events
  MemoryStats stats_;
};

constexpr int kMaxDevices = 16;

CudaCachingAllocator& cuda_allocator(int device) {
  static NoDestructor<std::array<std::unique_ptr<CudaCachingAllocator>, kMaxDevices>> allocators;
  static std::mutex mu;
  NSA_CHECK(device >= 0 && device < kMaxDevices, "[cuda allocator] device index ", device, " out of range");
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*allocators)[device];
  if (!slot) slot = std::make_unique<CudaCachingAllocator>(device);
  return *slot;
}

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  NSA_CHECK(cuda::available(), "[device] ", device.str(), " requested but no CUDA device is present");
  NSA_CHECK(device.index == cuda::current_device(), "[device] tensor on ", device.str(),
            " but the current device is cuda:", cuda::current_device(), " (one process per GPU)");
  return cuda_allocator(device.index);
}

namespace cuda {
void record_stream(void* ptr, Stream s) {
  cuda_allocator(current_device()).record_stream(ptr, static_cast<cudaStream_t>(s));
}

int new_private_pool() { return g_next_pool++; }
void set_thread_pool(int pool) { t_pool = pool; }
void release_private_pool(int pool) { cuda_allocator(current_device()).release_pool(pool); }
}  // namespace cuda

}  // namespace nsa
