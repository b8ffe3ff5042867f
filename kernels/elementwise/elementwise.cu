// Unary and binary elementwise maths and the SwiGLU backward. f32/bf16 compute in float (accurate
// expf/logf, not the fast intrinsics: the CPU comparison holds f32 to 1e-5), f64 in double.
#include "kernels/common/device_utils.cuh"
#include "kernels/elementwise/elementwise.h"

namespace nsa::kernels {
namespace {

constexpr int kThreads = 256;

template <class A>
__device__ __forceinline__ A sigmoid_of(A x) {
  return A(1) / (A(1) + exp(-x));
}

template <class A>
__device__ __forceinline__ A unary_value(UnaryOp op, A x, A alpha) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return exp(x);
    case UnaryOp::log:
      return log(x);
    case UnaryOp::sqrt:
      return sqrt(x);
    case UnaryOp::rsqrt:
      return A(1) / sqrt(x);
    case UnaryOp::square:
      return x * x;
    case UnaryOp::reciprocal:
      return A(1) / x;
    case UnaryOp::sigmoid:
      return sigmoid_of(x);
    case UnaryOp::silu:
      return x * sigmoid_of(x);
    case UnaryOp::tanh:
      return tanh(x);
    case UnaryOp::relu:
      return x > A(0) ? x : A(0);
    case UnaryOp::add_scalar:
      return x + alpha;
    case UnaryOp::mul_scalar:
      return x * alpha;
    case UnaryOp::pow_scalar:
      return pow(x, alpha);
  }
  return A(0);
}

template <class A>
__device__ __forceinline__ A binary_value(BinaryOp op, A a, A b) {
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
      return a * b * (A(1) - b);
    case BinaryOp::silu_backward: {
      const A s = sigmoid_of(b);
      return a * s * (A(1) + b * (A(1) - s));
    }
    case BinaryOp::tanh_backward:
      return a * (A(1) - b * b);
    case BinaryOp::relu_backward:
      return b > A(0) ? a : A(0);
  }
  return A(0);
}

// One kernel body for every elementwise shape: `F` maps the element's N input values (in the
// accumulation type) to its M outputs. Contiguous operands go 16 bytes at a time when all pointers are
// aligned; the tail and strided operands go one element at a time.
template <class T, int N, int M, bool kContiguous, bool kVector, class F>
__global__ void elementwise_kernel(Geometry geo, Strided out0, Strided out1, Strided in0, Strided in1,
                                   Strided in2, F f) {
  using A = acc_t<T>;
  const Strided ins[3] = {in0, in1, in2};
  const Strided outs[2] = {out0, out1};
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t start = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t scalar_begin = 0;
  if constexpr (kContiguous && kVector) {
    constexpr int V = Vec16<T>::kSize;
    const int64_t nvec = geo.numel / V;
    for (int64_t v = start; v < nvec; v += stride) {
      Vec16<T> x[N > 0 ? N : 1];
#pragma unroll
      for (int k = 0; k < N; ++k) x[k] = reinterpret_cast<const Vec16<T>*>(ins[k].ptr)[v];
      Vec16<T> y[M];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        A in[N > 0 ? N : 1];
#pragma unroll
        for (int k = 0; k < N; ++k) in[k] = to_acc(x[k].v[e]);
        A r[M];
        f(in, r);
#pragma unroll
        for (int k = 0; k < M; ++k) y[k].v[e] = from_acc<T>(r[k]);
      }
#pragma unroll
      for (int k = 0; k < M; ++k) reinterpret_cast<Vec16<T>*>(outs[k].ptr)[v] = y[k];
    }
    scalar_begin = nvec * V;
  }
  for (int64_t i = scalar_begin + start; i < geo.numel; i += stride) {
    A in[N > 0 ? N : 1];
    A r[M];
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const int64_t off = kContiguous ? i : strided_offset(i, geo.ndim, geo.sizes, ins[k].strides);
      in[k] = to_acc(static_cast<const T*>(ins[k].ptr)[off]);
    }
    f(in, r);
#pragma unroll
    for (int k = 0; k < M; ++k) {
      const int64_t off = kContiguous ? i : strided_offset(i, geo.ndim, geo.sizes, outs[k].strides);
      static_cast<T*>(outs[k].ptr)[off] = from_acc<T>(r[k]);
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <class T, int N, int M, class F>
void launch_elementwise(const Geometry& geo, const Strided (&outs)[2], const Strided (&ins)[3], F f,
                        cudaStream_t stream) {
  if (geo.numel == 0) return;
  bool vector_ok = geo.contiguous;
  for (int k = 0; k < M; ++k) vector_ok = vector_ok && aligned16(outs[k].ptr);
  for (int k = 0; k < N; ++k) vector_ok = vector_ok && aligned16(ins[k].ptr);
  const int64_t work = vector_ok ? (geo.numel + Vec16<T>::kSize - 1) / Vec16<T>::kSize : geo.numel;
  const unsigned grid = grid_for(work, kThreads);
  if (vector_ok) {
    elementwise_kernel<T, N, M, true, true>
        <<<grid, kThreads, 0, stream>>>(geo, outs[0], outs[1], ins[0], ins[1], ins[2], f);
  } else if (geo.contiguous) {
    elementwise_kernel<T, N, M, true, false>
        <<<grid, kThreads, 0, stream>>>(geo, outs[0], outs[1], ins[0], ins[1], ins[2], f);
  } else {
    elementwise_kernel<T, N, M, false, false>
        <<<grid, kThreads, 0, stream>>>(geo, outs[0], outs[1], ins[0], ins[1], ins[2], f);
  }
}

template <class T>
struct UnaryFn {
  UnaryOp op;
  acc_t<T> alpha;
  __device__ void operator()(const acc_t<T>* in, acc_t<T>* out) const {
    out[0] = unary_value(op, in[0], alpha);
  }
};

template <class T>
struct BinaryFn {
  BinaryOp op;
  __device__ void operator()(const acc_t<T>* in, acc_t<T>* out) const {
    out[0] = binary_value(op, in[0], in[1]);
  }
};

// in = (g, a, b) -> out = (ga, gb)
template <class T>
struct SwigluBackwardFn {
  __device__ void operator()(const acc_t<T>* in, acc_t<T>* out) const {
    using A = acc_t<T>;
    const A g = in[0], a = in[1], b = in[2];
    const A s = sigmoid_of(a);
    out[0] = g * b * s * (A(1) + a * (A(1) - s));
    out[1] = g * a * s;
  }
};

}  // namespace

Status launch_unary(const UnaryParams& p, cudaStream_t stream) {
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    launch_elementwise<T, 1, 1>(p.geo, {p.out, {}}, {p.a, {}, {}},
                                UnaryFn<T>{p.op, static_cast<acc_t<T>>(p.alpha)}, stream);
  });
  return ok ? last_launch() : invalid("unary: expected a floating dtype");
}

Status launch_binary(const BinaryParams& p, cudaStream_t stream) {
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    launch_elementwise<T, 2, 1>(p.geo, {p.out, {}}, {p.a, p.b, {}}, BinaryFn<T>{p.op}, stream);
  });
  return ok ? last_launch() : invalid("binary: expected a floating dtype");
}

Status launch_swiglu_backward(const SwigluBackwardParams& p, cudaStream_t stream) {
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    launch_elementwise<T, 3, 2>(p.geo, {p.ga, p.gb}, {p.g, p.a, p.b}, SwigluBackwardFn<T>{}, stream);
  });
  return ok ? last_launch() : invalid("swiglu_backward: expected a floating dtype");
}

}  // namespace nsa::kernels
