// SwiGLU feed-forward (Shazeer 2020): w_down(silu(w_gate x) ⊙ w_up x). The dense MLP of a block, and the
// shape of every MoE expert.
#pragma once

#include "nn/layers.h"

namespace nsa::nn {

class SwiGLU : public Module {
 public:
  // out_std: the init std of w_down (a residual-branch output).
  SwiGLU(const InitContext& ctx, int64_t dim, int64_t hidden, double out_std);
  Tensor forward(const Tensor& x) const;  // [..., dim] -> [..., dim]

 private:
  Linear w_gate_, w_up_, w_down_;
};

}  // namespace nsa::nn
