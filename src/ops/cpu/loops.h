// Helpers of the CPU reference backend: dtype dispatch, conversions through double, and a strided loop.
// Everything here favours being obviously right over being fast.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

namespace nsa::cpu {

template <class T>
inline double to_f64(T v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return static_cast<double>(static_cast<float>(v));
  } else {
    return static_cast<double>(v);
  }
}

template <class T>
inline T from_f64(double v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return bf16(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// Calls f.template operator()<T>() with T the C++ type of `dtype`.
template <class F>
void dispatch_floating(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::f64:
      f.template operator()<double>();
      return;
    case DType::f32:
      f.template operator()<float>();
      return;
    case DType::bf16:
      f.template operator()<bf16>();
      return;
    default:
      NSA_FAIL("[", op, "] expected a floating dtype, got ", dtype_name(dtype));
  }
}

template <class F>
void dispatch_index(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::i32:
      f.template operator()<int32_t>();
      return;
    case DType::i64:
      f.template operator()<int64_t>();
      return;
    default:
      NSA_FAIL("[", op, "] expected an i32 or i64 index tensor, got ", dtype_name(dtype));
  }
}

// Integer or float types.
template <class F>
void dispatch_all(DType dtype, const char* op, F&& f) {
  if (is_integral(dtype)) {
    dispatch_index(dtype, op, f);
  } else {
    dispatch_floating(dtype, op, f);
  }
}

// Calls f(offsets) for every element of `shape` in row-major order, where offsets[k] is the element
// offset of operand k (from its own strides).
template <size_t N, class F>
void for_each_strided(const Dims& shape, const std::array<Dims, N>& strides, F&& f) {
  const int64_t numel = shape.numel();
  if (numel == 0) return;
  std::array<int64_t, N> off{};
  const int nd = shape.size();
  if (nd == 0) {
    f(off);
    return;
  }
  Dims idx = shape;
  for (int d = 0; d < nd; ++d) idx[d] = 0;
  const int64_t inner = shape[nd - 1];
  for (int64_t row = 0; row < numel / inner; ++row) {
    std::array<int64_t, N> o = off;
    for (int64_t i = 0; i < inner; ++i) {
      f(o);
      for (size_t k = 0; k < N; ++k) o[k] += strides[k][nd - 1];
    }
    for (int d = nd - 2; d >= 0; --d) {
      idx[d]++;
      for (size_t k = 0; k < N; ++k) off[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= strides[k][d] * shape[d];
      idx[d] = 0;
    }
  }
}

// Reads element `i` of an index tensor (i32/i64) as int64.
inline int64_t index_at(const Tensor& index, int64_t i) {
  return index.dtype() == DType::i32 ? index.data<int32_t>()[i] : index.data<int64_t>()[i];
}

}  // namespace nsa::cpu
