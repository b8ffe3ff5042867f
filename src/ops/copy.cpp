#include "ops/copy.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/cuda_api.h"
#include "ops/backend.h"
#include "ops/checks.h"

namespace nsa {

namespace detail {

void check_inplace_allowed(const char* op, const Tensor& t) {
  NSA_CHECK(!(autograd::grad_enabled() && t.requires_grad()), "[", op,
            "] in-place write into a tensor that requires grad (wrap it in NoGradGuard, or use the "
            "out-of-place op)");
}

}  // namespace detail

namespace {

// Contiguous, same-dtype transfer between the CPU and a CUDA device.
void transfer(const Tensor& dst, const Tensor& src) {
  if (dst.device().is_cuda() && src.device().is_cpu()) {
    cuda::copy_to_device(dst.data_ptr(), src.data_ptr(), src.nbytes());
  } else if (dst.device().is_cpu() && src.device().is_cuda()) {
    cuda::copy_to_host(dst.data_ptr(), src.data_ptr(), src.nbytes());
  } else {
    NSA_FAIL("[copy] cannot copy from ", src.device().str(), " to ", dst.device().str(),
             " (one process uses one GPU)");
  }
}

Tensor contiguous_raw(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend_for(t.device()).copy(out, t);
  return out;
}

}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  detail::check_defined("copy_", dst, "destination");
  detail::check_defined("copy_", src, "source");
  NSA_CHECK(dst.shape() == src.shape(), "[copy_] shapes differ: destination ", dst.desc(), ", source ",
            src.desc());
  detail::check_inplace_allowed("copy_", dst);
  if (dst.device() == src.device()) {
    backend_for(dst.device()).copy(dst, src);
    return;
  }
  // Across devices: convert on the source side, move contiguous bytes, then lay out on the destination.
  Tensor staged = contiguous_raw(src);
  if (staged.dtype() != dst.dtype()) {
    Tensor cast = Tensor::empty(staged.shape(), dst.dtype(), staged.device());
    backend_for(staged.device()).copy(cast, staged);
    staged = cast;
  }
  if (dst.is_contiguous()) {
    transfer(dst, staged);
  } else {
    Tensor landing = Tensor::empty(dst.shape(), dst.dtype(), dst.device());
    transfer(landing, staged);
    backend_for(dst.device()).copy(dst, landing);
  }
}

void fill_(const Tensor& dst, double value) {
  detail::check_defined("fill_", dst);
  detail::check_inplace_allowed("fill_", dst);
  backend_for(dst.device()).fill(dst, value);
}

Tensor to(const Tensor& t, Device device, DType dtype) {
  detail::check_defined("to", t);
  if (t.device() == device && t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype, device);
  {
    NoGradGuard no_grad;  // copy_ into a fresh tensor: the op is recorded below, as a whole
    copy_(out, t);
  }
  const Device src_device = t.device();
  const DType src_dtype = t.dtype();
  if (is_floating(dtype)) {
    autograd::record("to", {t}, out,
                     [src_device, src_dtype](std::span<const Tensor> g) -> std::vector<Tensor> {
                       return {to(g[0], src_device, src_dtype)};
                     });
  }
  return out;
}

Tensor to(const Tensor& t, DType dtype) { return to(t, t.device(), dtype); }
Tensor to(const Tensor& t, Device device) { return to(t, device, t.dtype()); }

Tensor clone(const Tensor& t) {
  detail::check_defined("clone", t);
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend_for(t.device()).copy(out, t);
  autograd::record("clone", {t}, out,
                   [](std::span<const Tensor> g) -> std::vector<Tensor> { return {g[0]}; });
  return out;
}

Tensor contiguous(const Tensor& t) {
  detail::check_defined("contiguous", t);
  return t.is_contiguous() ? t : clone(t);
}

}  // namespace nsa
