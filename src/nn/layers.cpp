#include "nn/layers.h"

#include "ops/ops.h"

namespace nsa::nn {

Tensor init_normal(const InitContext& ctx, const Dims& shape, double std) {
  Tensor t = empty(shape, ctx.dtype, ctx.device);
  normal_(t, 0.0, std, ctx.gen);
  return t;
}

Linear::Linear(const InitContext& ctx, int64_t in, int64_t out, double std) {
  weight_ = add_parameter("weight", init_normal(ctx, {out, in}, std), ParamKind::weight);
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, to(weight_, x.dtype())); }

Embedding::Embedding(const InitContext& ctx, int64_t vocab, int64_t dim) {
  weight_ = add_parameter("weight", init_normal(ctx, {vocab, dim}, ctx.init_std), ParamKind::embedding);
}

Tensor Embedding::forward(const Tensor& ids, DType compute) const {
  return embedding(to(weight_, compute), ids);
}

RMSNorm::RMSNorm(const InitContext& ctx, int64_t dim, double eps) : eps_(eps) {
  weight_ = add_parameter("weight", ones({dim}, ctx.dtype, ctx.device), ParamKind::norm);
}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, to(weight_, x.dtype()), eps_); }

}  // namespace nsa::nn
