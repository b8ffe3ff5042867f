// SwiGLU feed-forward (Shazeer 2020): w_down(silu(w_gate x) ⊙ w_up x). The dense MLP of a block, and the
// shape of every MoE expert.
//
// Under tensor parallelism a tensor-parallel SwiGLU keeps a slice of the hidden units: w_gate/w_up are
// column-parallel (rows split), w_down row-parallel (columns split), so the forward needs one all-reduce
// (and the backward one, at the input). MoE experts are not split (whole experts live on one rank).
#pragma once

#include "nn/layers.h"

namespace nsa::nn {

class SwiGLU : public Module {
 public:
  // out_std: the init std of w_down (a residual-branch output). tensor_parallel: split over ctx.tp.
  SwiGLU(const InitContext& ctx, int64_t dim, int64_t hidden, double out_std, bool tensor_parallel = true);
  Tensor forward(const Tensor& x) const;  // [..., dim] -> [..., dim] (replicated in, replicated out)
  // This rank's partial sum of the output for an input already inside the TP region (no collectives):
  // the caller does tp_enter/tp_exit (MoE merges the shared expert into its experts' all-reduce).
  Tensor forward_partial(const Tensor& x) const;

 private:
  TpGroup tp_;
  Linear w_gate_, w_up_, w_down_;
};

}  // namespace nsa::nn
