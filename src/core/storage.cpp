#include "core/storage.h"

#include "core/allocator.h"

namespace nsa {

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(nbytes);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

// The allocator is remembered rather than looked up again: a destructor must not depend on which device
// is current by then.
Storage::~Storage() {
  if (allocator_) {
    if (data_) allocator_->deallocate(data_);
  } else if (deleter_) {
    deleter_(data_);
  }
}

}  // namespace nsa
