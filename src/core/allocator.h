// Allocators: where Storage gets its bytes. The CPU allocator is aligned malloc with statistics; the CUDA
// allocator is a stream-ordered caching allocator (no cudaMalloc once a training step has warmed the
// cache; a block freed on a stream is reused by later work on that stream without any synchronisation).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace nsa {

struct MemoryStats {
  int64_t allocated_bytes = 0;       // bytes in live tensors (rounded to the allocator's granularity)
  int64_t peak_allocated_bytes = 0;  // max of allocated_bytes since the last reset
  int64_t reserved_bytes = 0;        // bytes held from the system (live + cached)
  int64_t peak_reserved_bytes = 0;
  int64_t num_allocs = 0;         // allocate() calls
  int64_t num_system_allocs = 0;  // cudaMalloc / malloc calls that reached the system
  int64_t num_cache_flushes = 0;  // times the cache was emptied to satisfy a request (CUDA)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory for nbytes (nullptr for 0). CUDA: ordered on the current stream of the device.
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak_stats() = 0;
  // Returns cached, unused blocks to the system (CUDA); a no-op for the CPU.
  virtual void empty_cache() {}
};

Allocator& cpu_allocator();
// The allocator of a device; throws when `device` is CUDA and CUDA is unavailable.
Allocator& allocator_for(Device device);

inline MemoryStats memory_stats(Device device) { return allocator_for(device).stats(); }
inline void reset_peak_memory_stats(Device device) { allocator_for(device).reset_peak_stats(); }

}  // namespace nsa
