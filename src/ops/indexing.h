// Indexing: embedding lookup, index_select / index_add along a dim, gather / scatter_add (torch semantics
// along one dim). Index tensors are i32 or i64; out-of-range indices are an error on the CPU and, on the
// GPU, produce zeros and set a device error flag (checked at the next sync point) instead of faulting.
#pragma once

#include "core/tensor.h"

namespace nsa {

// weight [vocab, dim], ids [...] -> [..., dim].
Tensor embedding(const Tensor& weight, const Tensor& ids);
// index 1-d: result has index.numel() entries along dim.
Tensor index_select(const Tensor& src, int64_t dim, const Tensor& index);
// A copy of dst with src's slices added at index along dim (differentiable in both).
Tensor index_add(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);
// index has src's shape except along dim: out[..., j, ...] = src[..., index[..., j, ...], ...].
Tensor gather(const Tensor& src, int64_t dim, const Tensor& index);
// A copy of dst with src added at the positions index gives along dim.
Tensor scatter_add(const Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace nsa
