// AdamW update of many contiguous f32 tensors in few launches (multi-tensor apply), f32 arithmetic.
//
// Per element, with g = grad · grad_scale (grad itself is not written):
//   m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²
//   p ← p·decay_factor − step_size · m / (sqrt(v) / bias_correction2_sqrt + eps)
// where the host computes step_size = lr / (1 − β1^t), bias_correction2_sqrt = sqrt(1 − β2^t) and
// decay_factor = 1 − lr·weight_decay (1 for tensors without decay) from the step count t: no host sync.
// Tensors are cut into fixed chunks; a launch carries up to kAdamWTensorsPerLaunch tensors in its kernel
// arguments, so a model's parameters take ceil(count / kAdamWTensorsPerLaunch) launches.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

inline constexpr int kAdamWTensorsPerLaunch = 48;

// One tensor of the update: device pointers, all of `numel` contiguous f32 elements.
struct AdamWTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t numel;
  bool decay;  // decoupled weight decay applies to this tensor
};

struct AdamWParams {
  const AdamWTensor* tensors;  // host array of `count` descriptors
  int64_t count;
  const float* grad_scale;  // device pointer to one f32 multiplying every gradient; null: 1
  double beta1, beta2, eps;
  double step_size;              // lr / (1 − β1^t)
  double bias_correction2_sqrt;  // sqrt(1 − β2^t)
  double decay_factor;           // 1 − lr·weight_decay
};

Status launch_adamw(const AdamWParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
