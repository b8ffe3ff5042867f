// Row softmax / log-softmax over contiguous [rows, cols] and their backward. One block per row: one
// pass computes the running max and the rescaled sum of exponentials together (online softmax), a second
// writes the result; f32 accumulation (f64 for f64).
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct SoftmaxParams {
  ScalarType dtype;
  const void* in;
  void* out;
  int64_t rows, cols;
  bool log;
};

// grad_in = y·(g − Σ g·y) (softmax) or g − exp(y)·Σ g (log-softmax), y the forward output.
struct SoftmaxBackwardParams {
  ScalarType dtype;
  void* grad_in;
  const void* grad_out;
  const void* out;
  int64_t rows, cols;
  bool log;
};

Status launch_softmax(const SoftmaxParams& p, cudaStream_t stream);
Status launch_softmax_backward(const SoftmaxBackwardParams& p, cudaStream_t stream);

// Threads per row block for `cols` columns (shared with the loss kernels).
int row_threads(int64_t cols);

}  // namespace nsa::kernels
