// CPU-only builds: the optimizer's CUDA entry points exist but refuse (no CUDA tensor can reach them).
#include "optim/cuda_bindings.h"

namespace nsa::optim_cuda {

void adamw_update(std::span<const AdamWSlot>, const AdamWStepScalars&, const Tensor&) {
  NSA_FAIL("[adamw] this build has no CUDA support");
}

Tensor global_norm(std::span<const Tensor>, Device, bool) {
  NSA_FAIL("[global_grad_norm] this build has no CUDA support");
}

}  // namespace nsa::optim_cuda
