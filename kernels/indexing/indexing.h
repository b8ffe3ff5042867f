// Index kernels over contiguous [outer, n, inner] tensors: index_select / index_add with a 1-d index of m
// entries along the middle dim, and gather / scatter_add with an index of shape [outer, m, inner].
// An index outside [0, n) is not followed: it reads as 0 (select / gather) or adds nothing (add / scatter)
// and sets kIndexOutOfRange in *error_flag.
//
// The adds use atomicAdd (repeated indices collide); f32 and f64 natively. bf16 destinations are
// accumulated by the caller in an f32 copy: bf16 atomics would round at every addition. Summation order is
// therefore not fixed: results agree to rounding, not bitwise, between runs.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct IndexParams {
  ScalarType dtype, index_type;
  void* out;          // select/gather: [outer, m, inner]; add/scatter: the destination [outer, n, inner]
  const void* src;    // select/gather: [outer, n, inner]; add/scatter: the values [outer, m, inner]
  const void* index;  // [m] (select/add) or [outer, m, inner] (gather/scatter)
  int64_t outer, n, m, inner;
  unsigned* error_flag;
};

Status launch_index_select(const IndexParams& p, cudaStream_t stream);
Status launch_index_add(const IndexParams& p, cudaStream_t stream);  // dtype f32 or f64
Status launch_gather(const IndexParams& p, cudaStream_t stream);
Status launch_scatter_add(const IndexParams& p, cudaStream_t stream);  // dtype f32 or f64

// Vocabulary-shard lookup (tensor parallelism): local[i] = ids[i] - begin and mask[i] = 1 where
// begin <= ids[i] < begin + count, else local[i] = 0 and mask[i] = 0.
struct ShardIndexParams {
  ScalarType id_type, mask_type;
  const void* ids;
  int64_t* local;
  void* mask;
  int64_t n, begin, count;
};
Status launch_shard_index(const ShardIndexParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
