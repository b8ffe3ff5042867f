// RMSNorm over the last dim of contiguous [rows, dim]: y = x · rstd · w, rstd = 1/sqrt(mean(x²) + eps)
// saved in the accumulation type (f32, f64 for f64).
//
// Forward: one block per row, 16-byte loads when the row allows, two passes over the row (the second
// hits L1). Backward: each block walks a chunk of rows; a thread keeps its columns of w and its partial
// of grad_w in registers, so grad_w is reduced across blocks from a [chunks, dim] workspace in a fixed
// order (no atomics, deterministic).
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct RmsNormParams {
  ScalarType dtype;
  const void* x;
  const void* weight;
  void* y;
  void* rstd;
  int64_t rows, dim;
  double eps;
};

struct RmsNormBackwardParams {
  ScalarType dtype;
  void* grad_x;
  void* grad_weight;  // may be null
  const void* grad_y;
  const void* x;
  const void* weight;
  const void* rstd;
  int64_t rows, dim;
  void* workspace;  // rms_norm_backward_workspace_bytes(p)
};

Status launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);
size_t rms_norm_backward_workspace_bytes(const RmsNormBackwardParams& p);
Status launch_rms_norm_backward(const RmsNormBackwardParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
