// Indexing: embedding lookup, index_select / index_add along a dim, gather / scatter_add (torch semantics
// along one dim). Index tensors are i32 or i64; out-of-range indices are an error on the CPU and, on the
// GPU, produce zeros and set a device error flag (checked at the next sync point) instead of faulting.
#pragma once

#include <utility>

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

// For a shard [begin, begin + count) of a vocabulary (tensor parallelism): ids [...] (i32/i64) ->
// (local i64 [...]: id - begin inside the shard, 0 outside; mask [...] in mask_dtype: 1 inside, 0 outside).
// Not differentiable (integers in, constants out).
std::pair<Tensor, Tensor> shard_index(const Tensor& ids, int64_t begin, int64_t count, DType mask_dtype);

}  // namespace nsa
