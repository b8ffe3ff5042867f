// Top-k over the last dim: values in descending order and their i64 indices (ties: lower index first).
// Differentiable in the values (the gradient goes to the selected positions).
#pragma once

#include <utility>

#include "core/tensor.h"

namespace nsa {

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k);

}  // namespace nsa
