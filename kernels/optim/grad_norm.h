// The global L2 norm (or its square) of many contiguous f32 tensors: sqrt(Σ_t Σ_i x_ti²), without a host
// sync. Accumulates in double. Blocks sum fixed chunks into a partials workspace, and one block adds the
// partials in a fixed order, so the result is deterministic on a given GPU.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

inline constexpr int kGradNormTensorsPerLaunch = 96;

struct GradNormParams {
  const float* const* tensors;  // host array of `count` device pointers
  const int64_t* numels;        // host array of `count` sizes
  int64_t count;
  float* out;       // device: one f32
  bool squared;     // write Σ x² instead of its square root
  void* workspace;  // grad_norm_workspace_bytes(p) bytes
};

size_t grad_norm_workspace_bytes(const GradNormParams& p);
Status launch_grad_norm(const GradNormParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
