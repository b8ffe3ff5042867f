// Small helpers shared by the CPU attention references (dense attention, NSA): whole tensors to and from
// double, dot products and axpy over contiguous rows, reading a saved log-sum-exp.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {

template <class T>
std::vector<double> to_doubles(const Tensor& t) {
  const T* p = static_cast<const T*>(t.data_ptr());
  std::vector<double> d(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < d.size(); ++i) d[i] = to_f64(p[i]);
  return d;
}

template <class T>
void store(const Tensor& t, const std::vector<double>& d) {
  T* p = static_cast<T*>(t.data_ptr());
  for (size_t i = 0; i < d.size(); ++i) p[i] = from_f64<T>(d[i]);
}

inline double dot(const double* a, const double* b, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

// acc += alpha · x over n contiguous elements.
inline void axpy(double* acc, double alpha, const double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += alpha * x[i];
}

// Element i of a log-sum-exp tensor saved as f32 or f64.
inline double read_lse(const Tensor& lse, int64_t i) {
  return lse.dtype() == DType::f64 ? lse.data<double>()[i] : static_cast<double>(lse.data<float>()[i]);
}

}  // namespace nsa::cpu
