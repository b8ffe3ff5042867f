// Dims: a small fixed-capacity list of int64 used for shapes and strides (no heap, trivially copyable,
// so it can be passed by value into kernel parameter structs as plain arrays).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace nsa {

inline constexpr int kMaxDims = 8;

class Dims {
 public:
  Dims() = default;
  Dims(std::initializer_list<int64_t> values);
  explicit Dims(std::span<const int64_t> values);

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  int64_t back() const { return d_[n_ - 1]; }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  int64_t* begin() { return d_.data(); }
  int64_t* end() { return d_.data() + n_; }
  std::span<const int64_t> span() const { return {d_.data(), static_cast<size_t>(n_)}; }

  void push_back(int64_t v);
  void insert(int pos, int64_t v);
  void erase(int pos);

  int64_t numel() const;  // product of the entries (1 for an empty list)
  bool operator==(const Dims& o) const;
  std::string str() const;  // "[2, 3, 4]"

 private:
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

// Row-major (C-order) strides of a shape.
Dims contiguous_strides(const Dims& shape);

// Wraps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int wrap_dim(int64_t dim, int ndim, const char* op);

}  // namespace nsa
