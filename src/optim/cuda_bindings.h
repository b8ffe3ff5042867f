// The optimizer's CUDA entry points (src/optim/cuda/*.cpp, built with CUDA only). A CUDA-free header:
// the front ends (adamw.cpp, grad_clip.cpp) include it and call these for CUDA tensors.
#pragma once

#include <span>

#include "core/tensor.h"

namespace nsa::optim_cuda {

// One param's update: contiguous f32 tensors of one shape on the current CUDA device.
struct AdamWSlot {
  Tensor param, grad, exp_avg, exp_avg_sq;
  bool decay;
};

// Hyperparameters of one step, computed on the host in double (see kernels/optim/adamw.h).
struct AdamWStepScalars {
  double beta1, beta2, eps;
  double step_size;              // lr / (1 − β1^t)
  double bias_correction2_sqrt;  // sqrt(1 − β2^t)
  double decay_factor;           // 1 − lr·weight_decay
};

// grad_scale: a one-element f32 tensor on the device, or undefined for 1.
void adamw_update(std::span<const AdamWSlot> slots, const AdamWStepScalars& s, const Tensor& grad_scale);

// Σ‖x‖² (squared) or its square root over contiguous f32 tensors on `device`: a 0-d f32 tensor there.
Tensor global_norm(std::span<const Tensor> tensors, Device device, bool squared);

}  // namespace nsa::optim_cuda
