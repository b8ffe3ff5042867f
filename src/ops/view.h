// Views: new tensors over the same storage (no copy), differentiable. reshape copies only when the
// strides make a view impossible. split and cat are here too since they are views/copies of slices.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace nsa {

// One entry may be -1 (inferred).
Tensor reshape(const Tensor& t, const Dims& shape);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& t, const Dims& order);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& t, int64_t dim, int64_t index);  // narrow + squeeze
Tensor expand(const Tensor& t, const Dims& shape);           // size-1 dims (or new leading dims) broadcast
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);
Tensor detach(const Tensor& t);  // same data, no history

// Splits dim into pieces of the given sizes (views).
std::vector<Tensor> split(const Tensor& t, const std::vector<int64_t>& sizes, int64_t dim);
// Joins tensors of equal shape except along dim.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

// Broadcast shape of two shapes (numpy rules); throws naming `op` if incompatible.
Dims broadcast_shapes(const Dims& a, const Dims& b, const char* op);

}  // namespace nsa
