// CUDA bindings: copy, fill, random, unary, binary, SwiGLU backward.
#include "core/cuda/cuda_check.h"
#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {

void CudaBackend::copy(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    NSA_CUDA_CHECK(
        cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  kernels::CopyParams p{};
  p.dst_type = scalar(dst.dtype());
  p.src_type = scalar(src.dtype());
  p.geo = collapse(dst.shape(), {{&dst, &p.dst}, {&src, &p.src}});
  check(kernels::launch_copy(p, stream()), "copy");
}

void CudaBackend::fill(const Tensor& dst, double value) {
  kernels::FillParams p{};
  p.dtype = scalar(dst.dtype());
  p.value = value;
  p.geo = collapse(dst.shape(), {{&dst, &p.dst}});
  check(kernels::launch_fill(p, stream()), "fill");
}

void CudaBackend::random(const Tensor& dst, RandomDist dist, uint64_t seed, uint64_t offset, double a,
                         double b) {
  kernels::RandomParams p{};
  p.dtype = scalar(dst.dtype());
  p.dist = dist;
  p.dst = dst.data_ptr();
  p.numel = dst.numel();
  p.seed = seed;
  p.offset = offset;
  p.a = static_cast<float>(a);
  p.b = static_cast<float>(b);
  check(kernels::launch_random(p, stream()), "random");
}

void CudaBackend::unary(UnaryOp op, const Tensor& out, const Tensor& a, double alpha) {
  kernels::UnaryParams p{};
  p.op = op;
  p.alpha = alpha;
  p.dtype = scalar(out.dtype());
  p.geo = collapse(out.shape(), {{&out, &p.out}, {&a, &p.a}});
  check(kernels::launch_unary(p, stream()), "unary");
}

void CudaBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  kernels::BinaryParams p{};
  p.op = op;
  p.dtype = scalar(out.dtype());
  p.geo = collapse(out.shape(), {{&out, &p.out}, {&a, &p.a}, {&b, &p.b}});
  check(kernels::launch_binary(p, stream()), "binary");
}

void CudaBackend::swiglu_backward(const Tensor& ga, const Tensor& gb, const Tensor& g, const Tensor& a,
                                  const Tensor& b) {
  kernels::SwigluBackwardParams p{};
  p.dtype = scalar(g.dtype());
  p.geo = collapse(g.shape(), {{&ga, &p.ga}, {&gb, &p.gb}, {&g, &p.g}, {&a, &p.a}, {&b, &p.b}});
  check(kernels::launch_swiglu_backward(p, stream()), "swiglu_backward");
}

}  // namespace nsa::cuda_binding
