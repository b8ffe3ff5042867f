#include "ops/elementwise.h"

#include "autograd/node.h"
#include "ops/activation.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/reduce.h"
#include "ops/view.h"

namespace nsa {
namespace {

using Grads = std::vector<Tensor>;
using GradSpan = std::span<const Tensor>;

Tensor run_binary(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  detail::check_floating(name, a, "first operand");
  detail::check_floating(name, b, "second operand");
  detail::check_same_device(name, a, b);
  detail::check_same_dtype(name, a, b);
  const Dims shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend_for(a.device()).binary(op, out, detail::raw_expand(a, shape), detail::raw_expand(b, shape));
  return out;
}

Tensor run_unary(UnaryOp op, const char* name, const Tensor& a, double alpha = 0.0) {
  detail::check_floating(name, a);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  backend_for(a.device()).unary(op, out, a, alpha);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::add, "add", a, b);
  autograd::record("add", {a, b}, out, [sa = a.shape(), sb = b.shape()](GradSpan g) -> Grads {
    return {sum_to(g[0], sa), sum_to(g[0], sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::sub, "sub", a, b);
  autograd::record("sub", {a, b}, out, [sa = a.shape(), sb = b.shape()](GradSpan g) -> Grads {
    return {sum_to(g[0], sa), sum_to(neg(g[0]), sb)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::mul, "mul", a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  autograd::record("mul", {a, b}, out,
                   [sa = a.shape(), sb = b.shape(), va = need_b ? a.alias() : Tensor(),
                    vb = need_a ? b.alias() : Tensor()](GradSpan g) -> Grads {
                     return {vb.defined() ? sum_to(mul(g[0], vb), sa) : Tensor(),
                             va.defined() ? sum_to(mul(g[0], va), sb) : Tensor()};
                   });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::div, "div", a, b);
  autograd::record("div", {a, b}, out,
                   [sa = a.shape(), sb = b.shape(), vb = b.alias(), vo = out.alias()](GradSpan g) -> Grads {
                     const Tensor ga = div(g[0], vb);  // d(a/b)/da = 1/b;  d(a/b)/db = -(a/b)/b
                     return {sum_to(ga, sa), sum_to(neg(mul(ga, vo)), sb)};
                   });
  return out;
}

Tensor neg(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::neg, "neg", a);
  autograd::record("neg", {a}, out, [](GradSpan g) -> Grads { return {neg(g[0])}; });
  return out;
}

Tensor exp(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::exp, "exp", a);
  autograd::record("exp", {a}, out, [y = out.alias()](GradSpan g) -> Grads { return {mul(g[0], y)}; });
  return out;
}

Tensor log(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::log, "log", a);
  autograd::record("log", {a}, out, [x = a.alias()](GradSpan g) -> Grads { return {div(g[0], x)}; });
  return out;
}

Tensor sqrt(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::sqrt, "sqrt", a);
  autograd::record("sqrt", {a}, out,
                   [y = out.alias()](GradSpan g) -> Grads { return {mul_scalar(div(g[0], y), 0.5)}; });
  return out;
}

Tensor rsqrt(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::rsqrt, "rsqrt", a);
  autograd::record("rsqrt", {a}, out, [y = out.alias()](GradSpan g) -> Grads {
    return {mul(g[0], mul_scalar(pow_scalar(y, 3.0), -0.5))};  // d x^(-1/2) = -1/2 · y³
  });
  return out;
}

Tensor square(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::square, "square", a);
  autograd::record("square", {a}, out,
                   [x = a.alias()](GradSpan g) -> Grads { return {mul(g[0], mul_scalar(x, 2.0))}; });
  return out;
}

Tensor reciprocal(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::reciprocal, "reciprocal", a);
  autograd::record("reciprocal", {a}, out,
                   [y = out.alias()](GradSpan g) -> Grads { return {neg(mul(g[0], square(y)))}; });
  return out;
}

Tensor add_scalar(const Tensor& a, double value) {
  Tensor out = run_unary(UnaryOp::add_scalar, "add_scalar", a, value);
  autograd::record("add_scalar", {a}, out, [](GradSpan g) -> Grads { return {g[0]}; });
  return out;
}

Tensor mul_scalar(const Tensor& a, double value) {
  Tensor out = run_unary(UnaryOp::mul_scalar, "mul_scalar", a, value);
  autograd::record("mul_scalar", {a}, out,
                   [value](GradSpan g) -> Grads { return {mul_scalar(g[0], value)}; });
  return out;
}

Tensor pow_scalar(const Tensor& a, double exponent) {
  Tensor out = run_unary(UnaryOp::pow_scalar, "pow_scalar", a, exponent);
  autograd::record("pow_scalar", {a}, out, [x = a.alias(), exponent](GradSpan g) -> Grads {
    return {mul(g[0], mul_scalar(pow_scalar(x, exponent - 1.0), exponent))};
  });
  return out;
}

void add_(const Tensor& dst, const Tensor& b) {
  detail::check_floating("add_", dst);
  detail::check_floating("add_", b);
  detail::check_same_device("add_", dst, b);
  detail::check_same_dtype("add_", dst, b);
  detail::check_inplace_allowed("add_", dst);
  backend_for(dst.device()).binary(BinaryOp::add, dst, dst, detail::raw_expand(b, dst.shape()));
}

void mul_scalar_(const Tensor& dst, double value) {
  detail::check_floating("mul_scalar_", dst);
  detail::check_inplace_allowed("mul_scalar_", dst);
  backend_for(dst.device()).unary(UnaryOp::mul_scalar, dst, dst, value);
}

// ---- activations ----

Tensor sigmoid(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::sigmoid, "sigmoid", x);
  autograd::record("sigmoid", {x}, out, [y = out.alias()](GradSpan g) -> Grads {
    return {run_binary(BinaryOp::sigmoid_backward, "sigmoid_backward", g[0], y)};
  });
  return out;
}

Tensor silu(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::silu, "silu", x);
  autograd::record("silu", {x}, out, [v = x.alias()](GradSpan g) -> Grads {
    return {run_binary(BinaryOp::silu_backward, "silu_backward", g[0], v)};
  });
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::tanh, "tanh", x);
  autograd::record("tanh", {x}, out, [y = out.alias()](GradSpan g) -> Grads {
    return {run_binary(BinaryOp::tanh_backward, "tanh_backward", g[0], y)};
  });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = run_unary(UnaryOp::relu, "relu", x);
  autograd::record("relu", {x}, out, [v = x.alias()](GradSpan g) -> Grads {
    return {run_binary(BinaryOp::relu_backward, "relu_backward", g[0], v)};
  });
  return out;
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  NSA_CHECK(gate.defined() && up.defined() && gate.shape() == up.shape(),
            "[swiglu] gate and up must have one shape, got ", gate.desc(), " and ", up.desc());
  Tensor out = run_binary(BinaryOp::swiglu, "swiglu", gate, up);
  autograd::record("swiglu", {gate, up}, out, [a = gate.alias(), b = up.alias()](GradSpan g) -> Grads {
    Tensor ga = Tensor::empty(a.shape(), a.dtype(), a.device());
    Tensor gb = Tensor::empty(b.shape(), b.dtype(), b.device());
    backend_for(a.device()).swiglu_backward(ga, gb, g[0], a, b);
    return {ga, gb};
  });
  return out;
}

}  // namespace nsa
