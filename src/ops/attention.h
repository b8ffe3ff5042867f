// Dense scaled-dot-product attention with grouped KV heads (GQA), causal, optionally limited to a sliding
// window. The full-attention baseline of the model and NSA's sliding-window branch are both this op.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace nsa {

// q [B, T, Hq, Dk], k [B, T, Hkv, Dk], v [B, T, Hkv, Dv] with Hq a multiple of Hkv: query head h reads KV
// head h / (Hq / Hkv). Query t attends to keys s with t - window < s <= t (window = 0: every s <= t).
// scale = 0 means 1/sqrt(Dk). Returns [B, T, Hq, Dv] in q's dtype; differentiable in q, k and v.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale = 0.0, int64_t window = 0);

}  // namespace nsa
