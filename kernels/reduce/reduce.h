// Sum / max over the middle dim of a contiguous [outer, n, inner] tensor, f32 accumulation (f64 for f64).
//
// Rows (inner == 1) get a block each; columns (inner > 1) a 32-wide tile of threads that walk n with
// coalesced loads. When there are too few outputs to fill the GPU, sums split n into chunks whose partial
// sums (in the workspace, accumulation type) a second pass adds in a fixed order: the result is
// deterministic. Max runs in one pass and also writes the index of the first maximum.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct ReduceParams {
  ReduceOp op;
  ScalarType dtype;      // of in
  ScalarType out_dtype;  // of out: dtype, or bf16 for an f32 sum (partial sums in f32 into a bf16 result)
  const void* in;
  void* out;         // [outer, inner]
  int64_t* indices;  // max only: [outer, inner]
  int64_t outer, n, inner;
  double scale;     // sum only: out = scale · Σ
  void* workspace;  // reduce_workspace_bytes(p) bytes (may be null when that is 0)
};

size_t reduce_workspace_bytes(const ReduceParams& p);
Status launch_reduce(const ReduceParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
