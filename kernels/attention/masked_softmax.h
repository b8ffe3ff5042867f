// The softmax step of materialized causal attention (the score matrices come from batched GEMMs, see
// src/ops/cuda/attention.cpp). Scores are [rows, seq] contiguous; row r is query position t = r % seq and
// sees columns s with t - window < s <= t (window 0: every s <= t), never an empty set since s = t is
// always visible. One block per row, f32 accumulation (f64 for f64). Masked entries are written as 0, so
// the following GEMMs can run over the full rows.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

// In place: scores S → probabilities P = exp(scale·S − lse) (0 where masked); lse [rows] (f32, or f64 for
// f64) receives log Σ_visible exp(scale·S).
struct MaskedSoftmaxParams {
  ScalarType dtype;
  void* scores;
  void* lse;
  int64_t rows, seq, window;
  double scale;
};

// In place, both buffers [rows, seq]: scores S → P rebuilt from lse (as in the forward), and
// grad dP = dO·vᵀ → dS = scale · P ∘ (dP − Σ_s P∘dP), the gradient of the unscaled scores (0 where masked).
struct MaskedSoftmaxBackwardParams {
  ScalarType dtype;
  void* scores;
  void* grad;
  const void* lse;
  int64_t rows, seq, window;
  double scale;
};

Status launch_masked_softmax(const MaskedSoftmaxParams& p, cudaStream_t stream);
Status launch_masked_softmax_backward(const MaskedSoftmaxBackwardParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
