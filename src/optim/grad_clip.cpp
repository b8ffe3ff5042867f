// Gradient norm (CPU loops in double, or the CUDA multi-tensor kernel) and the clip coefficient (composed
// from ops, so it runs on the norm's device without a sync).
#include "optim/grad_clip.h"

#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "optim/cuda_bindings.h"

namespace nsa {
namespace {

Tensor norm_of(std::span<const Tensor> grads, bool squared) {
  std::vector<Tensor> defined;
  for (const Tensor& g : grads) {
    if (!g.defined()) continue;
    NSA_CHECK(is_floating(g.dtype()), "[global_grad_norm] expected floating grads, got ", g.desc());
    NSA_CHECK(defined.empty() || g.device() == defined.front().device(),
              "[global_grad_norm] grads on two devices: ", defined.front().desc(), " and ", g.desc());
    defined.push_back(contiguous(to(g, DType::f32)));  // grads are f32 already: no copy
  }
  const Device device = defined.empty() ? Device::cpu() : defined.front().device();
  if (device.is_cuda()) return optim_cuda::global_norm(defined, device, squared);
  double sum = 0;
  for (const Tensor& g : defined) {
    const float* x = g.data<float>();
    for (int64_t i = 0, n = g.numel(); i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  }
  return full({}, squared ? sum : std::sqrt(sum), DType::f32, device);
}

}  // namespace

Tensor grad_norm_squared(std::span<const Tensor> grads) { return norm_of(grads, true); }

Tensor global_grad_norm(std::span<const Tensor> grads) { return norm_of(grads, false); }

Tensor clip_coefficient(const Tensor& norm, double max_norm) {
  NSA_CHECK(norm.defined() && norm.numel() == 1 && is_floating(norm.dtype()),
            "[clip_coefficient] expected a one-element norm, got ",
            norm.defined() ? norm.desc() : "undefined");
  if (max_norm <= 0) return ones({}, DType::f32, norm.device());
  NoGradGuard no_grad;
  // min(1, x) = x − relu(x − 1) with ops only; exact in f64 in both regimes (x − 1 and x − (x − 1) are
  // exact for 1 <= x < 2^52, and x <= max_norm·1e6), and a NaN norm stays NaN (as torch's clamp).
  const Tensor x = mul_scalar(reciprocal(add_scalar(to(reshape(norm, {}), DType::f64), 1e-6)), max_norm);
  return to(sub(x, relu(add_scalar(x, -1.0))), DType::f32);
}

}  // namespace nsa
