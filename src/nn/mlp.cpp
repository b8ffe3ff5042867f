#include "nn/mlp.h"

#include "ops/ops.h"

namespace nsa::nn {

SwiGLU::SwiGLU(const InitContext& ctx, int64_t dim, int64_t hidden, double out_std)
    : w_gate_(ctx, dim, hidden, ctx.init_std), w_up_(ctx, dim, hidden, ctx.init_std), w_down_(ctx, hidden, dim, out_std) {
  add_child("w_gate", w_gate_);
  add_child("w_up", w_up_);
  add_child("w_down", w_down_);
}

Tensor SwiGLU::forward(const Tensor& x) const {
  return w_down_.forward(swiglu(w_gate_.forward(x), w_up_.forward(x)));
}

}  // namespace nsa::nn
