// CUDA binding of the AdamW multi-tensor update: Tensors -> kernels::AdamWTensor descriptors.
#include "kernels/optim/adamw.h"

#include <vector>

#include "ops/cuda/binding.h"
#include "optim/cuda_bindings.h"

namespace nsa::optim_cuda {

void adamw_update(std::span<const AdamWSlot> slots, const AdamWStepScalars& s, const Tensor& grad_scale) {
  std::vector<kernels::AdamWTensor> tensors;
  tensors.reserve(slots.size());
  for (const AdamWSlot& slot : slots) {
    tensors.push_back({slot.param.data<float>(), slot.grad.data<float>(), slot.exp_avg.data<float>(),
                       slot.exp_avg_sq.data<float>(), slot.param.numel(), slot.decay});
  }
  const kernels::AdamWParams p{tensors.data(),
                               static_cast<int64_t>(tensors.size()),
                               grad_scale.defined() ? grad_scale.data<float>() : nullptr,
                               s.beta1,
                               s.beta2,
                               s.eps,
                               s.step_size,
                               s.bias_correction2_sqrt,
                               s.decay_factor};
  cuda_binding::check(kernels::launch_adamw(p, cuda_binding::stream()), "adamw");
}

}  // namespace nsa::optim_cuda
