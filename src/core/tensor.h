// Tensor: a small handle (shared_ptr) to a strided view of a Storage plus its autograd state.
//
// Copying a Tensor copies the handle: both copies are the same tensor (same grad, same grad_fn). A view
// (reshape, transpose, narrow, expand...) is a new tensor sharing the storage. Element (i0, i1, ...) lives at
// storage.data() + (offset + Σ ik·stride[k]) · dtype_size. Strides may be 0 (broadcast by expand).
//
// The Tensor class holds only state and accessors. Everything that computes (views with autograd,
// arithmetic, copies between devices) is a free function of the ops layer (src/ops), declared in ops/ops.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/dims.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"

namespace nsa {

namespace autograd {
class Node;
}

// Autograd state of a tensor. Shared by copies of the handle (not by views, which get their own).
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;    // the node that produced this tensor (null for leaves)
  int output_nr = 0;                          // which output of grad_fn this tensor is
  std::weak_ptr<autograd::Node> accumulator;  // leaves: the node that accumulates into `grad`
  std::shared_ptr<struct TensorImpl> grad;    // leaves: the accumulated gradient (a TensorImpl, see below)
  // Leaves: called once per backward pass, right after the pass's gradient was added into `grad` (the
  // gradient is final for that pass). Data parallelism starts reducing a gradient here.
  std::function<void()> post_accumulate_hook;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Dims shape;
  Dims strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;
  Device device;
  std::shared_ptr<AutogradMeta> autograd;  // null until needed
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A fresh contiguous tensor with uninitialised contents (ops/factory.h has zeros, ones, randn...).
  static Tensor empty(const Dims& shape, DType dtype, Device device = Device::cpu());
  // A view of `storage` (no copy, no autograd).
  static Tensor view_of(std::shared_ptr<Storage> storage, const Dims& shape, const Dims& strides,
                        int64_t offset, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Dims& shape() const { return impl().shape; }
  const Dims& strides() const { return impl().strides; }
  int dim() const { return impl().shape.size(); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return impl().shape.numel(); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }
  size_t element_size() const { return dtype_size(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool is_contiguous() const;
  // True when both handles are the same tensor (not merely equal values).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  // "f32[2, 3] cuda:0" for messages.
  std::string desc() const;

  void* data_ptr() const;
  template <class T>
  T* data() const {
    NSA_CHECK(dtype() == DTypeOf<T>::value, "[data] tensor is ", dtype_name(dtype()), ", asked for ",
              dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(data_ptr());
  }

  // ---- autograd state (the engine is in src/autograd) ----
  bool requires_grad() const { return impl_ && impl_->autograd && impl_->autograd->requires_grad; }
  // Marks a leaf as a parameter to differentiate (floating dtypes only). Returns *this.
  Tensor& set_requires_grad(bool value);
  // The accumulated gradient of a leaf (undefined until a backward pass reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  int output_nr() const { return impl_ && impl_->autograd ? impl_->autograd->output_nr : 0; }
  bool is_leaf() const { return grad_fn() == nullptr; }
  AutogradMeta& autograd_meta();  // created on first use
  // The same view of the same storage, without autograd history (what `detach` returns).
  Tensor alias() const;

  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  const TensorImpl& impl() const {
    NSA_CHECK(impl_ != nullptr, "[tensor] use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace nsa
