// The CPU allocator: 64-byte aligned blocks (room for AVX-512 loads), counted like the CUDA allocator so
// that tests can check that memory returns to its baseline after a step on either device.
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>

#include "core/allocator.h"
#include "core/error.h"
#include "core/no_destructor.h"

namespace nsa {
namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    const size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    NSA_CHECK(p != nullptr, "[cpu allocator] out of memory allocating ", nbytes, " bytes");
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = rounded;
    stats_.num_allocs++;
    stats_.num_system_allocs++;
    stats_.allocated_bytes += static_cast<int64_t>(rounded);
    stats_.reserved_bytes = stats_.allocated_bytes;
    if (stats_.allocated_bytes > stats_.peak_allocated_bytes)
      stats_.peak_allocated_bytes = stats_.allocated_bytes;
    stats_.peak_reserved_bytes = stats_.peak_allocated_bytes;
    return p;
  }

  void deallocate(void* p) override {
    if (!p) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        stats_.allocated_bytes -= static_cast<int64_t>(it->second);
        stats_.reserved_bytes = stats_.allocated_bytes;
        sizes_.erase(it);
      }
    }
    std::free(p);
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

 private:
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  MemoryStats stats_;
};

}  // namespace

Allocator& cpu_allocator() {
  static NoDestructor<CpuAllocator> instance;  // never destroyed: tensors may outlive other statics
  return *instance;
}

}  // namespace nsa
