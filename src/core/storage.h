// Storage: one allocation shared by a tensor and all of its views. Freed (returned to its allocator, or
// handed to a custom deleter for memory the framework does not own, e.g. a memory-mapped shard) when the
// last view goes away.
#pragma once

#include <cstddef>
#include <functional>

#include "core/device.h"

namespace nsa {

class Allocator;

class Storage {
 public:
  // Allocates nbytes on `device` through allocator_for(device).
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere; `deleter` (may be empty) runs on destruction.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;      // owns data_ (null for wrapped memory)
  std::function<void(void*)> deleter_;  // wrapped memory: what to run on destruction (may be empty)
};

}  // namespace nsa
