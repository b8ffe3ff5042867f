// Input checks shared by the op front ends. Each throws nsa::Error with "[op] what was expected, what came".
#pragma once

#include "core/tensor.h"

namespace nsa::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what = "input") {
  NSA_CHECK(t.defined(), "[", op, "] ", what, " is an undefined tensor");
}

inline void check_floating(const char* op, const Tensor& t, const char* what = "input") {
  check_defined(op, t, what);
  NSA_CHECK(is_floating(t.dtype()), "[", op, "] expected a floating ", what, " (f64, f32, bf16), got ",
            t.desc());
}

inline void check_index(const char* op, const Tensor& t, const char* what = "index") {
  check_defined(op, t, what);
  NSA_CHECK(is_integral(t.dtype()), "[", op, "] expected an i32 or i64 ", what, ", got ", t.desc());
}

inline void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  NSA_CHECK(a.device() == b.device(), "[", op, "] tensors on different devices: ", a.desc(), " and ",
            b.desc());
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  NSA_CHECK(a.dtype() == b.dtype(), "[", op, "] dtypes differ: ", a.desc(), " and ", b.desc(),
            " (cast one with to())");
}

// In-place writes into tensors that autograd tracks would silently corrupt saved values.
void check_inplace_allowed(const char* op, const Tensor& t);

// A view sharing t's storage, without autograd (for use inside ops).
inline Tensor raw_view(const Tensor& t, const Dims& shape, const Dims& strides, int64_t offset) {
  return Tensor::view_of(t.storage(), shape, strides, offset, t.dtype());
}

// t broadcast to `shape` as a stride-0 view, without autograd.
Tensor raw_expand(const Tensor& t, const Dims& shape);

// Product of shape[begin:end].
inline int64_t prod(const Dims& shape, int begin, int end) {
  int64_t p = 1;
  for (int i = begin; i < end; ++i) p *= shape[i];
  return p;
}

}  // namespace nsa::detail
