// RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * weight over the last dim. Fused
// forward and backward; the inverse RMS is saved (f32) for the backward.
#pragma once

#include "core/tensor.h"

namespace nsa {

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

}  // namespace nsa
