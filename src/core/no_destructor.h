// NoDestructor<T>: a function-local singleton that is constructed on first use and never destroyed, so
// that tensors living in other static objects can still return memory to it at program exit.
#pragma once

#include <new>
#include <utility>

namespace nsa {

template <class T>
class NoDestructor {
 public:
  template <class... Args>
  explicit NoDestructor(Args&&... args) {
    ::new (static_cast<void*>(storage_)) T(std::forward<Args>(args)...);  // placement: no heap allocation
  }
  T& operator*() { return *std::launder(reinterpret_cast<T*>(storage_)); }
  T* operator->() { return &**this; }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace nsa
