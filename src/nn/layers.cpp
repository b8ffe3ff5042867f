#include "nn/layers.h"

#include "dist/sharding.h"
#include "dist/tp_ops.h"
#include "ops/ops.h"

namespace nsa::nn {

Tensor init_normal(const InitContext& ctx, const Dims& shape, double std) {
  Tensor t = empty(shape, ctx.dtype, ctx.device);
  normal_(t, 0.0, std, ctx.gen);
  return t;
}

Tensor tp_slice(const InitContext& ctx, const Tensor& full, int dim) {
  if (ctx.tp.size == 1) return full;
  const int64_t n = full.size(dim);
  // clone: the slice must not keep the full tensor's storage alive.
  return clone(narrow(full, dim, dist::shard_begin(n, ctx.tp.rank, ctx.tp.size),
                      dist::shard_size(n, ctx.tp.rank, ctx.tp.size)));
}

Tensor tp_enter(const TpGroup& tp, const Tensor& x) { return tp.size == 1 ? x : dist::copy_to_tp(x, *tp.comm); }
Tensor tp_exit(const TpGroup& tp, const Tensor& x) { return tp.size == 1 ? x : dist::reduce_from_tp(x, *tp.comm); }

Linear::Linear(const InitContext& ctx, int64_t in, int64_t out, double std, TpSplit split) {
  Tensor w = init_normal(ctx, {out, in}, std);
  if (split != TpSplit::none) w = tp_slice(ctx, w, split == TpSplit::rows ? 0 : 1);
  weight_ = add_parameter("weight", w, ParamKind::weight);
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, to(weight_, x.dtype())); }

Embedding::Embedding(const InitContext& ctx, int64_t vocab, int64_t dim)
    : tp_(ctx.tp), vocab_begin_(dist::shard_begin(vocab, ctx.tp.rank, ctx.tp.size)) {
  weight_ = add_parameter("weight", tp_slice(ctx, init_normal(ctx, {vocab, dim}, ctx.init_std), 0),
                          ParamKind::embedding);
}

Tensor Embedding::forward(const Tensor& ids, DType compute) const {
  if (tp_.size == 1) return embedding(to(weight_, compute), ids);
  return dist::vocab_parallel_embedding(to(weight_, compute), ids, vocab_begin_, *tp_.comm);
}

RMSNorm::RMSNorm(const InitContext& ctx, int64_t dim, double eps) : eps_(eps) {
  weight_ = add_parameter("weight", ones({dim}, ctx.dtype, ctx.device), ParamKind::norm);
}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, to(weight_, x.dtype()), eps_); }

}  // namespace nsa::nn
