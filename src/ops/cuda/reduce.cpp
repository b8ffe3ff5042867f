// CUDA bindings: reductions, softmax, cross-entropy.
#include "kernels/reduce/reduce.h"

#include "kernels/loss/cross_entropy.h"
#include "kernels/softmax/softmax.h"
#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {

void CudaBackend::reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in,
                         int64_t outer, int64_t n, int64_t inner, double scale) {
  kernels::ReduceParams p{op,
                          scalar(in.dtype()),
                          scalar(out.dtype()),
                          in.data_ptr(),
                          out.data_ptr(),
                          indices.defined() ? indices.data<int64_t>() : nullptr,
                          outer,
                          n,
                          inner,
                          scale,
                          nullptr};
  Tensor ws;
  if (const size_t bytes = kernels::reduce_workspace_bytes(p)) {
    ws = workspace(bytes, in.device());
    p.workspace = ws.data_ptr();
  }
  check(kernels::launch_reduce(p, stream()), op == ReduceOp::sum ? "sum" : "max");
}

void CudaBackend::softmax(const Tensor& out, const Tensor& in, bool log) {
  const int64_t cols = in.size(-1);
  kernels::SoftmaxParams p{scalar(in.dtype()), in.data_ptr(), out.data_ptr(), in.numel() / cols, cols, log};
  check(kernels::launch_softmax(p, stream()), log ? "log_softmax" : "softmax");
}

void CudaBackend::softmax_backward(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                   bool log) {
  const int64_t cols = out.size(-1);
  kernels::SoftmaxBackwardParams p{scalar(out.dtype()),
                                   grad_in.data_ptr(),
                                   grad_out.data_ptr(),
                                   out.data_ptr(),
                                   out.numel() / cols,
                                   cols,
                                   log};
  check(kernels::launch_softmax_backward(p, stream()), log ? "log_softmax_backward" : "softmax_backward");
}

void CudaBackend::cross_entropy(const Tensor& loss, const Tensor& lse, const Tensor& count,
                                const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  const int64_t rows = logits.size(0);
  Tensor ws = workspace(static_cast<size_t>(rows) * dtype_size(loss.dtype()), logits.device());
  kernels::CrossEntropyParams p{};
  p.dtype = scalar(logits.dtype());
  p.loss_type = scalar(loss.dtype());
  p.target_type = scalar(targets.dtype());
  p.logits = logits.data_ptr();
  p.targets = targets.data_ptr();
  p.loss = loss.data_ptr();
  p.lse = lse.data_ptr();
  p.count = count.data_ptr();
  p.rows = rows;
  p.vocab = logits.size(1);
  p.ignore_index = ignore_index;
  p.workspace = ws.data_ptr();
  p.error_flag = error_flag();
  check(kernels::launch_cross_entropy(p, stream()), "cross_entropy");
}

void CudaBackend::cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss,
                                         const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                         const Tensor& count, int64_t ignore_index) {
  kernels::CrossEntropyBackwardParams p{};
  p.dtype = scalar(logits.dtype());
  p.loss_type = scalar(lse.dtype());
  p.target_type = scalar(targets.dtype());
  p.grad_logits = grad_logits.data_ptr();
  p.grad_loss = grad_loss.data_ptr();
  p.logits = logits.data_ptr();
  p.targets = targets.data_ptr();
  p.lse = lse.data_ptr();
  p.count = count.data_ptr();
  p.rows = logits.size(0);
  p.vocab = logits.size(1);
  p.ignore_index = ignore_index;
  check(kernels::launch_cross_entropy_backward(p, stream()), "cross_entropy_backward");
}

}  // namespace nsa::cuda_binding
