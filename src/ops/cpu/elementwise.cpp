// CPU reference: copy, fill, random and the elementwise maths, computed in double.
#include <cmath>

#include "core/philox.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {
namespace {

double sigmoid_of(double x) { return 1.0 / (1.0 + std::exp(-x)); }

double unary_value(UnaryOp op, double x, double alpha) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::rsqrt:
      return 1.0 / std::sqrt(x);
    case UnaryOp::square:
      return x * x;
    case UnaryOp::reciprocal:
      return 1.0 / x;
    case UnaryOp::sigmoid:
      return sigmoid_of(x);
    case UnaryOp::silu:
      return x * sigmoid_of(x);
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::relu:
      return x > 0 ? x : 0.0;
    case UnaryOp::add_scalar:
      return x + alpha;
    case UnaryOp::mul_scalar:
      return x * alpha;
    case UnaryOp::pow_scalar:
      return std::pow(x, alpha);
  }
  return 0;
}

double binary_value(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
    case BinaryOp::swiglu:
      return b * a * sigmoid_of(a);
    case BinaryOp::sigmoid_backward:
      return a * b * (1.0 - b);
    case BinaryOp::silu_backward: {
      const double s = sigmoid_of(b);
      return a * s * (1.0 + b * (1.0 - s));
    }
    case BinaryOp::tanh_backward:
      return a * (1.0 - b * b);
    case BinaryOp::relu_backward:
      return b > 0 ? a : 0.0;
  }
  return 0;
}

}  // namespace

void CpuBackend::copy(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), "copy", [&]<class D>() {
    dispatch_all(src.dtype(), "copy", [&]<class S>() {
      D* d = static_cast<D*>(dst.data_ptr());
      const S* s = static_cast<const S*>(src.data_ptr());
      for_each_strided<2>(dst.shape(), {dst.strides(), src.strides()}, [&](const auto& o) {
        if constexpr (std::is_same_v<D, S>) {
          d[o[0]] = s[o[1]];
        } else {
          d[o[0]] = from_f64<D>(to_f64(s[o[1]]));
        }
      });
    });
  });
}

void CpuBackend::fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill", [&]<class T>() {
    T* d = static_cast<T*>(dst.data_ptr());
    const T v = from_f64<T>(value);
    for_each_strided<1>(dst.shape(), {dst.strides()}, [&](const auto& o) { d[o[0]] = v; });
  });
}

void CpuBackend::random(const Tensor& dst, RandomDist dist, uint64_t seed, uint64_t offset, double a,
                        double b) {
  const float fa = static_cast<float>(a), fb = static_cast<float>(b);
  dispatch_floating(dst.dtype(), "random", [&]<class T>() {
    T* d = static_cast<T*>(dst.data_ptr());
    for (int64_t i = 0; i < dst.numel(); ++i) {
      const uint64_t e = offset + static_cast<uint64_t>(i);
      // Same float operations as the CUDA kernel, so the bits agree.
      const float v = dist == RandomDist::uniform
                          ? philox::fma_rn(philox::uniform(seed, e), philox::add_rn(fb, -fa), fa)
                          : philox::fma_rn(philox::normal(seed, e), fb, fa);
      if constexpr (std::is_same_v<T, bf16>) {
        d[i] = bf16(v);
      } else {
        d[i] = static_cast<T>(v);
      }
    }
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& out, const Tensor& a, double alpha) {
  dispatch_floating(out.dtype(), "unary", [&]<class T>() {
    T* o = static_cast<T*>(out.data_ptr());
    const T* x = static_cast<const T*>(a.data_ptr());
    for_each_strided<2>(out.shape(), {out.strides(), a.strides()}, [&](const auto& off) {
      o[off[0]] = from_f64<T>(unary_value(op, to_f64(x[off[1]]), alpha));
    });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_floating(out.dtype(), "binary", [&]<class T>() {
    T* o = static_cast<T*>(out.data_ptr());
    const T* x = static_cast<const T*>(a.data_ptr());
    const T* y = static_cast<const T*>(b.data_ptr());
    for_each_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, [&](const auto& off) {
      o[off[0]] = from_f64<T>(binary_value(op, to_f64(x[off[1]]), to_f64(y[off[2]])));
    });
  });
}

void CpuBackend::swiglu_backward(const Tensor& ga, const Tensor& gb, const Tensor& g, const Tensor& a,
                                 const Tensor& b) {
  dispatch_floating(g.dtype(), "swiglu_backward", [&]<class T>() {
    T* oa = static_cast<T*>(ga.data_ptr());
    T* ob = static_cast<T*>(gb.data_ptr());
    const T* pg = static_cast<const T*>(g.data_ptr());
    const T* pa = static_cast<const T*>(a.data_ptr());
    const T* pb = static_cast<const T*>(b.data_ptr());
    for_each_strided<5>(
        g.shape(), {ga.strides(), gb.strides(), g.strides(), a.strides(), b.strides()}, [&](const auto& off) {
          const double x = to_f64(pa[off[3]]), up = to_f64(pb[off[4]]), gr = to_f64(pg[off[2]]);
          const double s = sigmoid_of(x);
          oa[off[0]] = from_f64<T>(gr * up * s * (1.0 + x * (1.0 - s)));
          ob[off[1]] = from_f64<T>(gr * x * s);
        });
  });
}

}  // namespace nsa::cpu
