// Fused cross-entropy over contiguous logits [rows, vocab]: per-row log-sum-exp (online softmax, one
// read of the logits), the mean over rows whose target is not ignore_index, all on the device. The count
// of rows stays on the device too, so the backward needs no host round trip.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct CrossEntropyParams {
  ScalarType dtype;        // logits
  ScalarType loss_type;    // f32, or f64 for f64 logits: loss, lse, count
  ScalarType target_type;  // i32 / i64
  const void* logits;
  const void* targets;
  void* loss;   // 0-d
  void* lse;    // [rows]
  void* count;  // 0-d
  int64_t rows, vocab, ignore_index;
  void* workspace;       // rows · sizeof(loss type): per-row losses
  unsigned* error_flag;  // kTargetOutOfRange is or-ed in for a bad target (the row is then skipped)
};

struct CrossEntropyBackwardParams {
  ScalarType dtype, loss_type, target_type;
  void* grad_logits;
  const void* grad_loss;  // 0-d
  const void* logits;
  const void* targets;
  const void* lse;
  const void* count;
  int64_t rows, vocab, ignore_index;
};

Status launch_cross_entropy(const CrossEntropyParams& p, cudaStream_t stream);
Status launch_cross_entropy_backward(const CrossEntropyBackwardParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
