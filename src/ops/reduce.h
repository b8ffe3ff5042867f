// Reductions over dims: sum, mean, max (with the index of the maximum). Accumulation is f32 for bf16 and
// f32 tensors on the GPU and double on the CPU reference.
#pragma once

#include <utility>
#include <vector>

#include "core/tensor.h"

namespace nsa {

Tensor sum(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor sum(const Tensor& t);  // all elements: a 0-d tensor
Tensor mean(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& t);
// Maximum over one dim: (values, i64 indices of the first maximum).
std::pair<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim = false);

// Sums `t` down to `shape` (the inverse of broadcasting; used by gradients of broadcast operands).
Tensor sum_to(const Tensor& t, const Dims& shape);

}  // namespace nsa
