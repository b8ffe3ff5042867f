#include "core/dims.h"

#include "core/error.h"

namespace nsa {

Dims::Dims(std::initializer_list<int64_t> values)
    : Dims(std::span<const int64_t>(values.begin(), values.size())) {}

Dims::Dims(std::span<const int64_t> values) {
  NSA_CHECK(values.size() <= static_cast<size_t>(kMaxDims), "[dims] at most ", kMaxDims, " dimensions, got ",
            values.size());
  for (int64_t v : values) d_[n_++] = v;
}

void Dims::push_back(int64_t v) {
  NSA_CHECK(n_ < kMaxDims, "[dims] at most ", kMaxDims, " dimensions");
  d_[n_++] = v;
}

void Dims::insert(int pos, int64_t v) {
  NSA_CHECK(n_ < kMaxDims, "[dims] at most ", kMaxDims, " dimensions");
  for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}

void Dims::erase(int pos) {
  for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

int64_t Dims::numel() const {
  int64_t n = 1;
  for (int i = 0; i < n_; ++i) n *= d_[i];
  return n;
}

bool Dims::operator==(const Dims& o) const {
  if (n_ != o.n_) return false;
  for (int i = 0; i < n_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

std::string Dims::str() const {
  std::string s = "[";
  for (int i = 0; i < n_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
  return s + "]";
}

Dims contiguous_strides(const Dims& shape) {
  Dims strides = shape;
  int64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

int wrap_dim(int64_t dim, int ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  NSA_CHECK(d >= 0 && d < ndim, "[", op, "] dim ", dim, " out of range for a tensor of ", ndim, " dims");
  return static_cast<int>(d);
}

}  // namespace nsa
