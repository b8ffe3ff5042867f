#include "core/storage.h"

#include "core/allocator.h"

namespace nsa {

Storage::Storage(size_t nbytes, Device device)
    : data_(allocator_for(device).allocate(nbytes)), nbytes_(nbytes), device_(device) {}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)), owned_(false) {}

Storage::~Storage() {
  if (owned_) {
    if (data_) allocator_for(device_).deallocate(data_);
  } else if (deleter_) {
    deleter_(data_);
  }
}

}  // namespace nsa
