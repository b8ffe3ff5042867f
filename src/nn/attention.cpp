#include "nn/attention.h"

#include <cmath>

#include "nn/nsa_attention.h"
#include "ops/ops.h"
#include "ops/attention.h"

namespace nsa::nn {

SelfAttention::SelfAttention(const InitContext& ctx, const ModelConfig& model, const AttentionConfig& attention)
    : model_(model),
      attention_(attention),
      tp_(ctx.tp),
      head_dim_(model.resolved_head_dim()),
      v_head_dim_(model.resolved_v_head_dim()),
      heads_(model.n_heads / ctx.tp.size),
      kv_heads_(model.n_kv_heads / ctx.tp.size),
      wq_(ctx, model.d_model, model.n_heads * head_dim_, ctx.init_std, TpSplit::rows),
      wk_(ctx, model.d_model, model.n_kv_heads * head_dim_, ctx.init_std, TpSplit::rows),
      wv_(ctx, model.d_model, model.n_kv_heads * v_head_dim_, ctx.init_std, TpSplit::rows),
      // Residual-branch outputs start smaller so the residual stream's variance does not grow with depth
      // (GPT-2's 1/sqrt(2·n_layers)).
      wo_(ctx, model.n_heads * v_head_dim_, model.d_model,
          ctx.init_std / std::sqrt(2.0 * static_cast<double>(model.n_layers)), TpSplit::cols) {
  NSA_CHECK(model.n_kv_heads % ctx.tp.size == 0, "[attention] ", ctx.tp.size,
            " TP ranks do not divide n_kv_heads = ", model.n_kv_heads);
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

Tensor SelfAttention::forward(const Tensor& x_replicated, const Tensor& positions) const {
  const Tensor x = tp_enter(tp_, x_replicated);
  const int64_t B = x.size(0), T = x.size(1);
  Tensor q = rope(reshape(wq_.forward(x), {B, T, heads_, head_dim_}), positions, model_.rope_theta);
  Tensor k = rope(reshape(wk_.forward(x), {B, T, kv_heads_, head_dim_}), positions, model_.rope_theta);
  Tensor v = reshape(wv_.forward(x), {B, T, kv_heads_, v_head_dim_});
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  Tensor o = nsa_ ? nsa_->forward(x, q, k, v, positions, scale) : attention(q, k, v, scale);
  return tp_exit(tp_, wo_.forward(reshape(o, {B, T, heads_ * v_head_dim_})));
}

}  // namespace nsa::nn
