// CUDA bindings: RMSNorm and rotary embedding.
#include <cmath>

#include "kernels/norm/rms_norm.h"
#include "kernels/rope/rope.h"
#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {

void CudaBackend::rms_norm(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                           double eps) {
  const int64_t dim = x.size(-1);
  kernels::RmsNormParams p{scalar(x.dtype()),
                           x.data_ptr(),
                           weight.data_ptr(),
                           y.data_ptr(),
                           rstd.data_ptr(),
                           x.numel() / dim,
                           dim,
                           eps};
  check(kernels::launch_rms_norm(p, stream()), "rms_norm");
}

void CudaBackend::rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_y,
                                    const Tensor& x, const Tensor& weight, const Tensor& rstd) {
  const int64_t dim = x.size(-1);
  kernels::RmsNormBackwardParams p{scalar(x.dtype()),
                                   grad_x.data_ptr(),
                                   grad_weight.defined() ? grad_weight.data_ptr() : nullptr,
                                   grad_y.data_ptr(),
                                   x.data_ptr(),
                                   weight.data_ptr(),
                                   rstd.data_ptr(),
                                   x.numel() / dim,
                                   dim,
                                   nullptr};
  Tensor ws;
  if (const size_t bytes = kernels::rms_norm_backward_workspace_bytes(p)) {
    ws = workspace(bytes, x.device());
    p.workspace = ws.data_ptr();
  }
  check(kernels::launch_rms_norm_backward(p, stream()), "rms_norm_backward");
}

void CudaBackend::rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta,
                       int64_t rot_dim, bool inverse) {
  NSA_CHECK(rot_dim / 2 <= kernels::kMaxRopeHalf, "[rope] rot_dim ", rot_dim, " above the CUDA limit ",
            2 * kernels::kMaxRopeHalf);
  kernels::RopeParams p{};
  p.dtype = scalar(x.dtype());
  p.pos_type = scalar(positions.dtype());
  p.x = x.data_ptr();
  p.out = out.data_ptr();
  p.positions = positions.data_ptr();
  p.tokens = x.size(0);
  p.heads = x.size(1);
  p.head_dim = x.size(2);
  p.rot_dim = rot_dim;
  p.inverse = inverse;
  // The same expression as the CPU reference, so both rotate by the same frequencies.
  for (int64_t i = 0; i < rot_dim / 2; ++i)
    p.inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
  check(kernels::launch_rope(p, stream()), "rope");
}

}  // namespace nsa::cuda_binding
