#include "ops/factory.h"

#include <cstring>

#include "core/cuda_api.h"
#include "ops/backend.h"
#include "ops/copy.h"

namespace nsa {

Tensor empty(const Dims& shape, DType dtype, Device device) { return Tensor::empty(shape, dtype, device); }

Tensor full(const Dims& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_(t, value);
  return t;
}

Tensor zeros(const Dims& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Dims& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }

Tensor arange(int64_t n, DType dtype, Device device) {
  NSA_CHECK(n >= 0, "[arange] expected n >= 0, got ", n);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return from_vector<int64_t>(v, {n}, dtype, device);
}

namespace {

void fill_random(const Tensor& t, RandomDist dist, double a, double b, Generator* gen) {
  NSA_CHECK(is_floating(t.dtype()), "[random] expected a floating tensor, got ", t.desc());
  NSA_CHECK(t.is_contiguous(), "[random] expected a contiguous tensor, got strides ", t.strides().str());
  Generator& g = gen ? *gen : default_generator();
  const uint64_t offset = g.take(static_cast<uint64_t>(t.numel()));
  backend_for(t.device()).random(t, dist, g.seed(), offset, a, b);
}

}  // namespace

Tensor rand(const Dims& shape, DType dtype, Device device, Generator* gen) {
  Tensor t = empty(shape, dtype, device);
  fill_random(t, RandomDist::uniform, 0.0, 1.0, gen);
  return t;
}

Tensor randn(const Dims& shape, DType dtype, Device device, Generator* gen) {
  Tensor t = empty(shape, dtype, device);
  fill_random(t, RandomDist::normal, 0.0, 1.0, gen);
  return t;
}

void uniform_(const Tensor& t, double low, double high, Generator* gen) {
  fill_random(t, RandomDist::uniform, low, high, gen);
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  fill_random(t, RandomDist::normal, mean, std, gen);
}

template <class T>
Tensor from_vector(std::span<const T> values, const Dims& shape, DType dtype, Device device) {
  NSA_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "[from_vector] ", values.size(),
            " values for shape ", shape.str());
  Tensor host = Tensor::empty(shape, DTypeOf<T>::value, Device::cpu());
  if (!values.empty()) std::memcpy(host.data_ptr(), values.data(), values.size() * sizeof(T));
  return to(host, device, dtype);
}

template <class T>
std::vector<T> to_vector(const Tensor& t) {
  Tensor host = contiguous(to(to(t, DTypeOf<T>::value), Device::cpu()));
  std::vector<T> out(static_cast<size_t>(host.numel()));
  if (!out.empty()) std::memcpy(out.data(), host.data_ptr(), out.size() * sizeof(T));
  return out;
}

double item(const Tensor& t) {
  NSA_CHECK(t.defined() && t.numel() == 1, "[item] expected a one-element tensor, got ", t.desc());
  return to_vector<double>(t)[0];
}

#define NSA_INSTANTIATE(T)                                                        \
  template Tensor from_vector<T>(std::span<const T>, const Dims&, DType, Device); \
  template std::vector<T> to_vector<T>(const Tensor&);
NSA_INSTANTIATE(double)
NSA_INSTANTIATE(float)
NSA_INSTANTIATE(bf16)
NSA_INSTANTIATE(int32_t)
NSA_INSTANTIATE(int64_t)
#undef NSA_INSTANTIATE

}  // namespace nsa
