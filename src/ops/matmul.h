// Matrix products (cuBLASLt on the GPU: bf16 in, f32 accumulate; true f32 and f64 for f32/f64 tensors).
// Transposed views are passed to the GEMM as transposes, not copied.
#pragma once

#include "core/tensor.h"

namespace nsa {

// a [..., m, k] x b [k, n] -> [..., m, n] (leading dims of a flattened into m), or
// a [batch, m, k] x b [batch, k, n] -> [batch, m, n]. trans_a / trans_b transpose the last two dims first.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x [..., in] with weight [out, in] (the PyTorch layout): x · weightᵀ -> [..., out].
Tensor linear(const Tensor& x, const Tensor& weight);

}  // namespace nsa
