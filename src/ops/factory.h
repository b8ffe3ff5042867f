// Tensor factories: filled, random (Philox, identical on CPU and CUDA for the same generator state), and
// from/to host vectors.
#pragma once

#include <span>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace nsa {

Tensor empty(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Dims& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// 0, 1, ..., n-1.
Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());

// Uniform in [low, high) / normal(mean, std), drawn from `gen` (default_generator() when null).
Tensor rand(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu(),
            Generator* gen = nullptr);
Tensor randn(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu(),
             Generator* gen = nullptr);
void uniform_(const Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean, double std, Generator* gen = nullptr);

// A tensor holding a copy of host data (converted from T to `dtype`).
template <class T>
Tensor from_vector(std::span<const T> values, const Dims& shape, DType dtype = DTypeOf<T>::value,
                   Device device = Device::cpu());
template <class T>
Tensor from_vector(const std::vector<T>& values, const Dims& shape, DType dtype = DTypeOf<T>::value,
                   Device device = Device::cpu()) {
  return from_vector(std::span<const T>(values), shape, dtype, device);
}
// The values of any tensor as a host vector of T (row-major; synchronises with the device).
template <class T>
std::vector<T> to_vector(const Tensor& t);
// The single value of a one-element tensor (synchronises with the device).
double item(const Tensor& t);

}  // namespace nsa
