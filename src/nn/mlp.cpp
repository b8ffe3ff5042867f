#include "nn/mlp.h"

#include "ops/ops.h"

namespace nsa::nn {

SwiGLU::SwiGLU(const InitContext& ctx, int64_t dim, int64_t hidden, double out_std, bool tensor_parallel)
    : tp_(tensor_parallel ? ctx.tp : TpGroup{}),
      w_gate_(ctx, dim, hidden, ctx.init_std, tensor_parallel ? TpSplit::rows : TpSplit::none),
      w_up_(ctx, dim, hidden, ctx.init_std, tensor_parallel ? TpSplit::rows : TpSplit::none),
      w_down_(ctx, hidden, dim, out_std, tensor_parallel ? TpSplit::cols : TpSplit::none) {
  add_child("w_gate", w_gate_);
  add_child("w_up", w_up_);
  add_child("w_down", w_down_);
}

Tensor SwiGLU::forward_partial(const Tensor& x) const {
  return w_down_.forward(swiglu(w_gate_.forward(x), w_up_.forward(x)));
}

Tensor SwiGLU::forward(const Tensor& x) const { return tp_exit(tp_, forward_partial(tp_enter(tp_, x))); }

}  // namespace nsa::nn
