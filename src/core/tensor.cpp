#include "core/tensor.h"

namespace nsa {

Tensor Tensor::empty(const Dims& shape, DType dtype, Device device) {
  for (int64_t s : shape) NSA_CHECK(s >= 0, "[empty] negative size in shape ", shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, const Dims& shape, const Dims& strides,
                       int64_t offset, DType dtype) {
  NSA_CHECK(shape.size() == strides.size(), "[view] shape ", shape.str(), " and strides ", strides.str(),
            " differ in rank");
  auto impl = std::make_shared<TensorImpl>();
  impl->device = storage->device();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  return str(dtype_name(dtype()), shape().str(), " ", device().str());
}

void* Tensor::data_ptr() const {
  const auto& s = impl().storage;
  if (!s || !s->data()) return nullptr;
  return static_cast<char*>(s->data()) + impl().offset * static_cast<int64_t>(element_size());
}

Tensor& Tensor::set_requires_grad(bool value) {
  NSA_CHECK(!value || is_floating(dtype()), "[requires_grad] only floating tensors can require grad, got ",
            desc());
  NSA_CHECK(is_leaf(), "[requires_grad] can only be set on leaf tensors (use detach first)");
  autograd_meta().requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->autograd || !impl_->autograd->grad) return Tensor();
  return Tensor(impl_->autograd->grad);
}

void Tensor::set_grad(const Tensor& g) { autograd_meta().grad = g.impl_ptr(); }

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  return impl_ && impl_->autograd ? impl_->autograd->grad_fn : none;
}

AutogradMeta& Tensor::autograd_meta() {
  NSA_CHECK(impl_ != nullptr, "[tensor] use of an undefined tensor");
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  return *impl_->autograd;
}

Tensor Tensor::alias() const {
  if (!impl_) return Tensor();
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->autograd = nullptr;
  return Tensor(std::move(impl));
}

}  // namespace nsa
