// The gated sum of Native Sparse Attention's three branches (paper eq. 5; ops/nsa.h nsa_gate_combine),
// forward and backward, fused: one pass over the rows instead of a sigmoid, three broadcast products and two
// sums (and their backward) as separate elementwise kernels.
//
//   forward   out[r, :] = σ(g[r, 0])·o_cmp[r, :] + σ(g[r, 1])·o_slc[r, :] + σ(g[r, 2])·o_win[r, :]
//   backward  d_o_c[r, :] = σ(g[r, c])·dout[r, :]
//             d_logits[r, c] = σ(g[r, c])·(1 − σ(g[r, c]))·Σ_d dout[r, d]·o_c[r, d]
//             and, when asked (deltas, f32, bf16 and f32 inputs), each branch backward's row statistic
//             delta_c[b, h, t] = Σ_d d_o_c[r, d]·o_c[r, d] = σ(g[r, c])·Σ_d dout[r, d]·o_c[r, d], which the
//             row sums above already hold, so the branch backwards need not read d_o_c and o_c again for it
//
// Rows r = (b, t, h) of B·T·H; every tensor contiguous: logits [rows, 3], the others [rows, dim]. All of one
// dtype (bf16, f32, f64); the maths runs in f32 (f64 for f64) and each output is rounded once. The
// backward's row sums run in a fixed order (no atomics): deterministic.
#pragma once

#include <cstdint>

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct NsaGateForwardParams {
  ScalarType dtype;
  int64_t rows, dim;
  const void* logits;
  const void *o_cmp, *o_slc, *o_win;
  void* out;
};

struct NsaGateBackwardParams {
  ScalarType dtype;
  int64_t rows, dim;
  const void* dout;
  const void* logits;
  const void *o_cmp, *o_slc, *o_win;
  void* d_logits;
  void *d_cmp, *d_slc, *d_win;
  // Optional: f32 [3, B, H, T] (cmp, slc, win) with rows = B·T·H, r = (b·T + t)·H + h.
  float* deltas = nullptr;
  int64_t seq = 0, heads = 0;
};

Status launch_nsa_gate_forward(const NsaGateForwardParams& p, cudaStream_t stream);
Status launch_nsa_gate_backward(const NsaGateBackwardParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
