// CUDA binding of the global gradient norm: Tensors -> pointer/size lists, workspace from the allocator.
#include "kernels/optim/grad_norm.h"

#include <vector>

#include "ops/cuda/binding.h"
#include "optim/cuda_bindings.h"

namespace nsa::optim_cuda {

Tensor global_norm(std::span<const Tensor> tensors, Device device, bool squared) {
  std::vector<const float*> pointers;
  std::vector<int64_t> numels;
  for (const Tensor& t : tensors) {
    pointers.push_back(t.data<float>());
    numels.push_back(t.numel());
  }
  Tensor out = Tensor::empty({}, DType::f32, device);
  kernels::GradNormParams p{pointers.data(),   numels.data(), static_cast<int64_t>(pointers.size()),
                            out.data<float>(), squared,       nullptr};
  Tensor ws;
  if (const size_t bytes = kernels::grad_norm_workspace_bytes(p)) {
    ws = cuda_binding::workspace(bytes, device);
    p.workspace = ws.data_ptr();
  }
  cuda_binding::check(kernels::launch_grad_norm(p, cuda_binding::stream()), "global_grad_norm");
  return out;
}

}  // namespace nsa::optim_cuda
