// CPU reference: copy, fill, random and the elementwise maths, computed in double and rounded once. When
// every operand is contiguous the same per-element expressions run as one flat loop over the thread pool
// (ops/cpu/parallel.h); otherwise a strided loop. Either way each element's bits are the same.
#include <cmath>

#include "core/philox.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

double sigmoid_of(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The maths of each op, one instantiation per op so loops carry no switch. Both loop shapes (flat and
// strided) evaluate exactly this expression per element, so they give the same bits.
template <UnaryOp kOp>
double unary_value(double x, double alpha) {
  if constexpr (kOp == UnaryOp::neg) return -x;
  if constexpr (kOp == UnaryOp::exp) return std::exp(x);
  if constexpr (kOp == UnaryOp::log) return std::log(x);
  if constexpr (kOp == UnaryOp::sqrt) return std::sqrt(x);
  if constexpr (kOp == UnaryOp::rsqrt) return 1.0 / std::sqrt(x);
  if constexpr (kOp == UnaryOp::square) return x * x;
  if constexpr (kOp == UnaryOp::reciprocal) return 1.0 / x;
  if constexpr (kOp == UnaryOp::sigmoid) return sigmoid_of(x);
  if constexpr (kOp == UnaryOp::silu) return x * sigmoid_of(x);
  if constexpr (kOp == UnaryOp::tanh) return std::tanh(x);
  if constexpr (kOp == UnaryOp::relu) return x > 0 ? x : 0.0;
  if constexpr (kOp == UnaryOp::add_scalar) return x + alpha;
  if constexpr (kOp == UnaryOp::mul_scalar) return x * alpha;
  if constexpr (kOp == UnaryOp::pow_scalar) return std::pow(x, alpha);
}

template <BinaryOp kOp>
double binary_value(double a, double b) {
  if constexpr (kOp == BinaryOp::add) return a + b;
  if constexpr (kOp == BinaryOp::sub) return a - b;
  if constexpr (kOp == BinaryOp::mul) return a * b;
  if constexpr (kOp == BinaryOp::div) return a / b;
  if constexpr (kOp == BinaryOp::swiglu) return b * a * sigmoid_of(a);
  if constexpr (kOp == BinaryOp::sigmoid_backward) return a * b * (1.0 - b);
  if constexpr (kOp == BinaryOp::silu_backward) {
    const double s = sigmoid_of(b);
    return a * s * (1.0 + b * (1.0 - s));
  }
  if constexpr (kOp == BinaryOp::tanh_backward) return a * (1.0 - b * b);
  if constexpr (kOp == BinaryOp::relu_backward) return b > 0 ? a : 0.0;
}

// Calls f.template operator()<kOp>() for the run-time op.
template <class F>
void dispatch_unary(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::neg:
      return f.template operator()<UnaryOp::neg>();
    case UnaryOp::exp:
      return f.template operator()<UnaryOp::exp>();
    case UnaryOp::log:
      return f.template operator()<UnaryOp::log>();
    case UnaryOp::sqrt:
      return f.template operator()<UnaryOp::sqrt>();
    case UnaryOp::rsqrt:
      return f.template operator()<UnaryOp::rsqrt>();
    case UnaryOp::square:
      return f.template operator()<UnaryOp::square>();
    case UnaryOp::reciprocal:
      return f.template operator()<UnaryOp::reciprocal>();
    case UnaryOp::sigmoid:
      return f.template operator()<UnaryOp::sigmoid>();
    case UnaryOp::silu:
      return f.template operator()<UnaryOp::silu>();
    case UnaryOp::tanh:
      return f.template operator()<UnaryOp::tanh>();
    case UnaryOp::relu:
      return f.template operator()<UnaryOp::relu>();
    case UnaryOp::add_scalar:
      return f.template operator()<UnaryOp::add_scalar>();
    case UnaryOp::mul_scalar:
      return f.template operator()<UnaryOp::mul_scalar>();
    case UnaryOp::pow_scalar:
      return f.template operator()<UnaryOp::pow_scalar>();
  }
  NSA_FAIL("[unary] unknown op ", static_cast<int>(op));
}

template <class F>
void dispatch_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::add:
      return f.template operator()<BinaryOp::add>();
    case BinaryOp::sub:
      return f.template operator()<BinaryOp::sub>();
    case BinaryOp::mul:
      return f.template operator()<BinaryOp::mul>();
    case BinaryOp::div:
      return f.template operator()<BinaryOp::div>();
    case BinaryOp::swiglu:
      return f.template operator()<BinaryOp::swiglu>();
    case BinaryOp::sigmoid_backward:
      return f.template operator()<BinaryOp::sigmoid_backward>();
    case BinaryOp::silu_backward:
      return f.template operator()<BinaryOp::silu_backward>();
    case BinaryOp::tanh_backward:
      return f.template operator()<BinaryOp::tanh_backward>();
    case BinaryOp::relu_backward:
      return f.template operator()<BinaryOp::relu_backward>();
  }
  NSA_FAIL("[binary] unknown op ", static_cast<int>(op));
}

// Elements per thread below which the pool is not woken (a wake-up costs a few microseconds).
constexpr int64_t kGrain = 16384;

// True when all tensors are contiguous: with equal shapes (the Backend contract), element i of each is at
// flat offset i, and the op can run as one flat loop split over the pool.
bool all_flat(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (!t->is_contiguous()) return false;
  }
  return true;
}

// fn(i) for i in [0, n), split over the pool (each element written by one thread: same bits as serial).
template <class F>
void flat_for(int64_t n, F&& fn) {
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

}  // namespace

void CpuBackend::copy(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), "copy", [&]<class D>() {
    dispatch_all(src.dtype(), "copy", [&]<class S>() {
      D* d = static_cast<D*>(dst.data_ptr());
      const S* s = static_cast<const S*>(src.data_ptr());
      if (all_flat({&dst, &src})) {
        flat_for(dst.numel(), [&](int64_t i) {
          if constexpr (std::is_same_v<D, S>) {
            d[i] = s[i];
          } else {
            d[i] = from_f64<D>(to_f64(s[i]));
          }
        });
        return;
      }
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
    if (all_flat({&dst})) {
      flat_for(dst.numel(), [&](int64_t i) { d[i] = v; });
      return;
    }
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
    dispatch_unary(op, [&]<UnaryOp kOp>() {
      T* o = static_cast<T*>(out.data_ptr());
      const T* x = static_cast<const T*>(a.data_ptr());
      if (all_flat({&out, &a})) {
        flat_for(out.numel(), [&](int64_t i) { o[i] = from_f64<T>(unary_value<kOp>(to_f64(x[i]), alpha)); });
        return;
      }
      for_each_strided<2>(out.shape(), {out.strides(), a.strides()}, [&](const auto& off) {
        o[off[0]] = from_f64<T>(unary_value<kOp>(to_f64(x[off[1]]), alpha));
      });
    });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_floating(out.dtype(), "binary", [&]<class T>() {
    dispatch_binary(op, [&]<BinaryOp kOp>() {
      T* o = static_cast<T*>(out.data_ptr());
      const T* x = static_cast<const T*>(a.data_ptr());
      const T* y = static_cast<const T*>(b.data_ptr());
      if (all_flat({&out, &a, &b})) {
        flat_for(out.numel(),
                 [&](int64_t i) { o[i] = from_f64<T>(binary_value<kOp>(to_f64(x[i]), to_f64(y[i]))); });
        return;
      }
      for_each_strided<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, [&](const auto& off) {
        o[off[0]] = from_f64<T>(binary_value<kOp>(to_f64(x[off[1]]), to_f64(y[off[2]])));
      });
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
    auto element = [&](int64_t i_ga, int64_t i_gb, int64_t i_g, int64_t i_a, int64_t i_b) {
      const double x = to_f64(pa[i_a]), up = to_f64(pb[i_b]), gr = to_f64(pg[i_g]);
      const double s = sigmoid_of(x);
      oa[i_ga] = from_f64<T>(gr * up * s * (1.0 + x * (1.0 - s)));
      ob[i_gb] = from_f64<T>(gr * x * s);
    };
    if (all_flat({&ga, &gb, &g, &a, &b})) {
      flat_for(g.numel(), [&](int64_t i) { element(i, i, i, i, i); });
      return;
    }
    for_each_strided<5>(g.shape(), {ga.strides(), gb.strides(), g.strides(), a.strides(), b.strides()},
                        [&](const auto& off) { element(off[0], off[1], off[2], off[3], off[4]); });
  });
}

}  // namespace nsa::cpu
