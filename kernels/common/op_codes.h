// Op codes shared by the host op layer (src/ops/backend.h) and the kernels, declared once. Plain C++:
// included by CPU-only code too.
#pragma once

#include <cstdint>

namespace nsa {

enum class UnaryOp : uint8_t {
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  square,
  reciprocal,
  sigmoid,
  silu,
  tanh,
  relu,
  add_scalar,  // a + alpha
  mul_scalar,  // a * alpha
  pow_scalar,  // a ^ alpha
};

enum class BinaryOp : uint8_t {
  add,
  sub,
  mul,
  div,
  swiglu,            // silu(a) * b
  sigmoid_backward,  // a = grad, b = sigmoid output:  a * b * (1 - b)
  silu_backward,     // a = grad, b = silu input:      a * s * (1 + b * (1 - s)), s = sigmoid(b)
  tanh_backward,     // a = grad, b = tanh output:     a * (1 - b^2)
  relu_backward,     // a = grad, b = relu input:      b > 0 ? a : 0
};

enum class ReduceOp : uint8_t { sum, max };
enum class RandomDist : uint8_t { uniform, normal };

}  // namespace nsa
