// CUDA binding of Native Sparse Attention's fused gate (kernels/nsa/nsa_gate.h): Tensor → params, launch
// on the current stream. Every tensor contiguous (the front end made sure); rows = B·T·H.
#include "kernels/nsa/nsa_gate.h"

#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {

void CudaBackend::nsa_gate_forward(const Tensor& out, const Tensor& logits, const Tensor& o_cmp,
                                   const Tensor& o_slc, const Tensor& o_win) {
  const kernels::NsaGateForwardParams p{scalar(out.dtype()), logits.numel() / 3, out.size(-1),
                                        logits.data_ptr(),   o_cmp.data_ptr(),   o_slc.data_ptr(),
                                        o_win.data_ptr(),    out.data_ptr()};
  check(kernels::launch_nsa_gate_forward(p, stream()), "nsa_gate_combine");
}

void CudaBackend::nsa_gate_backward(const Tensor& d_logits, const Tensor& d_cmp, const Tensor& d_slc,
                                    const Tensor& d_win, const Tensor& dout, const Tensor& logits,
                                    const Tensor& o_cmp, const Tensor& o_slc, const Tensor& o_win,
                                    const Tensor* deltas) {
  kernels::NsaGateBackwardParams p{scalar(dout.dtype()), logits.numel() / 3, dout.size(-1),
                                   dout.data_ptr(),      logits.data_ptr(),  o_cmp.data_ptr(),
                                   o_slc.data_ptr(),     o_win.data_ptr(),   d_logits.data_ptr(),
                                   d_cmp.data_ptr(),     d_slc.data_ptr(),   d_win.data_ptr()};
  if (deltas != nullptr) {  // f32 [3, B, H, T] (the front end allocates it so)
    p.deltas = deltas->data<float>();
    p.heads = deltas->size(2);
    p.seq = deltas->size(3);
  }
  check(kernels::launch_nsa_gate_backward(p, stream()), "nsa_gate_combine_backward");
}

}  // namespace nsa::cuda_binding
