#include "kernels/softmax/online_softmax.cuh"
#include "kernels/softmax/softmax.h"

namespace nsa::kernels {
namespace {

template <class T>
__global__ void softmax_kernel(const T* in, T* out, int64_t cols, bool log_out) {
  using A = acc_t<T>;
  const T* x = in + blockIdx.x * cols;
  T* y = out + blockIdx.x * cols;
  MaxSum<A> ms{A(-INFINITY), A(0)};
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) ms.add(to_acc(x[c]));
  const A lse = block_merge(ms).lse();
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const A z = to_acc(x[c]) - lse;
    y[c] = from_acc<T>(log_out ? z : exp(z));
  }
}

template <class T>
__global__ void softmax_backward_kernel(T* grad_in, const T* grad_out, const T* out, int64_t cols,
                                        bool log_out) {
  using A = acc_t<T>;
  const int64_t base = blockIdx.x * cols;
  A acc = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const A g = to_acc(grad_out[base + c]);
    acc += log_out ? g : g * to_acc(out[base + c]);
  }
  acc = block_sum(acc);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const A g = to_acc(grad_out[base + c]), y = to_acc(out[base + c]);
    grad_in[base + c] = from_acc<T>(log_out ? g - exp(y) * acc : y * (g - acc));
  }
}

}  // namespace

int row_threads(int64_t cols) {
  if (cols <= 64) return 32;
  if (cols <= 256) return 64;
  if (cols <= 1024) return 128;
  if (cols <= 4096) return 256;
  return 512;
}

Status launch_softmax(const SoftmaxParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.cols == 0) return {};
  if (p.rows > 0x7fffffff) return invalid("softmax: too many rows");
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    softmax_kernel<T><<<static_cast<unsigned>(p.rows), row_threads(p.cols), 0, stream>>>(
        static_cast<const T*>(p.in), static_cast<T*>(p.out), p.cols, p.log);
  });
  return ok ? last_launch() : invalid("softmax: expected a floating dtype");
}

Status launch_softmax_backward(const SoftmaxBackwardParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.cols == 0) return {};
  if (p.rows > 0x7fffffff) return invalid("softmax_backward: too many rows");
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    softmax_backward_kernel<T><<<static_cast<unsigned>(p.rows), row_threads(p.cols), 0, stream>>>(
        static_cast<T*>(p.grad_in), static_cast<const T*>(p.grad_out), static_cast<const T*>(p.out), p.cols,
        p.log);
  });
  return ok ? last_launch() : invalid("softmax_backward: expected a floating dtype");
}

}  // namespace nsa::kernels
