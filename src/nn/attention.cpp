#include "nn/attention.h"

#include <cmath>

#include "nn/nsa_attention.h"
#include "ops/ops.h"
#include "ops/attention.h"

namespace nsa::nn {

SelfAttention::SelfAttention(const InitContext& ctx, const ModelConfig& model, const AttentionConfig& attention)
    : model_(model),
      attention_(attention),
      head_dim_(model.resolved_head_dim()),
      v_head_dim_(model.resolved_v_head_dim()),
      wq_(ctx, model.d_model, model.n_heads * head_dim_, ctx.init_std),
      wk_(ctx, model.d_model, model.n_kv_heads * head_dim_, ctx.init_std),
      wv_(ctx, model.d_model, model.n_kv_heads * v_head_dim_, ctx.init_std),
      // Residual-branch outputs start smaller so the residual stream's variance does not grow with depth
      // (GPT-2's 1/sqrt(2·n_layers)).
      wo_(ctx, model.n_heads * v_head_dim_, model.d_model,
          ctx.init_std / std::sqrt(2.0 * static_cast<double>(model.n_layers))) {
  add_child("wq", wq_);
  add_child("wk", wk_);
  add_child("wv", wv_);
  add_child("wo", wo_);
  if (attention.type == "nsa") {
    nsa_ = std::make_unique<NsaBranches>(ctx, model, attention.nsa);
    add_child("nsa", *nsa_);
  }
}

SelfAttention::~SelfAttention() = default;

Tensor SelfAttention::forward(const Tensor& x, const Tensor& positions) const {
  const int64_t B = x.size(0), T = x.size(1);
  Tensor q = rope(reshape(wq_.forward(x), {B, T, model_.n_heads, head_dim_}), positions, model_.rope_theta);
  Tensor k = rope(reshape(wk_.forward(x), {B, T, model_.n_kv_heads, head_dim_}), positions, model_.rope_theta);
  Tensor v = reshape(wv_.forward(x), {B, T, model_.n_kv_heads, v_head_dim_});
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  Tensor o = nsa_ ? nsa_->forward(x, q, k, v, positions, scale) : attention(q, k, v, scale);
  return wo_.forward(reshape(o, {B, T, model_.n_heads * v_head_dim_}));
}

}  // namespace nsa::nn
