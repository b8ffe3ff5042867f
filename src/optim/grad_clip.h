// Global-norm gradient clipping without host syncs: the norm and the clip coefficient stay 0-d f32 tensors
// on the gradients' device, and AdamW::step multiplies the gradients by the coefficient inside its kernel.
//   norm = sqrt(Σ_t ‖g_t‖²)        coefficient = min(1, max_norm / (norm + 1e-6))
// An infinite norm gives a coefficient of 0, a NaN norm NaN (as torch.nn.utils.clip_grad_norm_): the
// caller logs the norm and decides.
#pragma once

#include <span>

#include "core/tensor.h"

namespace nsa {

// Σ_t ‖g_t‖² over the defined grads (undefined ones are skipped), accumulated in double, as a 0-d f32
// tensor on their device (all on one device; CPU when none is defined). For sharded parameters a
// distributed caller all-reduces this before the square root.
Tensor grad_norm_squared(std::span<const Tensor> grads);
// sqrt(grad_norm_squared(grads)).
Tensor global_grad_norm(std::span<const Tensor> grads);

// min(1, max_norm / (norm + 1e-6)) as a 0-d f32 tensor on norm's device; ones when max_norm <= 0
// (clipping disabled). Computed in f64 from the f32 norm.
Tensor clip_coefficient(const Tensor& norm, double max_norm);

}  // namespace nsa
