// Copies and conversions: between layouts (contiguous), dtypes (cast) and devices (to). The conversions
// are differentiable: the gradient goes back to the source's dtype and device.
#pragma once

#include "core/tensor.h"

namespace nsa {

// dst = src in place (same shape; dtypes and strides may differ; both on one device, or a contiguous
// pair across CPU and CUDA). Not recorded by autograd.
void copy_(const Tensor& dst, const Tensor& src);
void fill_(const Tensor& dst, double value);

Tensor clone(const Tensor& t);              // a contiguous copy (differentiable)
Tensor contiguous(const Tensor& t);         // t itself when already contiguous
Tensor to(const Tensor& t, DType dtype);    // cast (t itself when already that dtype)
Tensor to(const Tensor& t, Device device);  // move (t itself when already there)
Tensor to(const Tensor& t, Device device, DType dtype);

}  // namespace nsa
