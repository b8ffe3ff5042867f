#include "nn/transformer.h"

#include <cmath>

#include "dist/tp_ops.h"
#include "ops/ops.h"

namespace nsa::nn {

Block::Block(const InitContext& ctx, const Config& config, int64_t layer)
    : attn_norm_(ctx, config.model.d_model, config.model.norm_eps),
      attn_(ctx, config.model, config.attention),
      mlp_norm_(ctx, config.model.d_model, config.model.norm_eps) {
  add_child("attn_norm", attn_norm_);
  add_child("attn", attn_);
  add_child("mlp_norm", mlp_norm_);
  if (config.moe.enabled() && layer >= config.moe.first_k_dense) {
    moe_ = std::make_unique<MoE>(ctx, config.model, config.moe);
    add_child("moe", *moe_);
  } else {
    const double out_std = ctx.init_std / std::sqrt(2.0 * static_cast<double>(config.model.n_layers));
    mlp_ = std::make_unique<SwiGLU>(ctx, config.model.d_model, config.model.ffn_hidden, out_std);
    add_child("mlp", *mlp_);
  }
}

Tensor Block::forward(const Tensor& x, const Tensor& positions, Tensor* aux_loss) const {
  Tensor h = add(x, attn_.forward(attn_norm_.forward(x), positions));
  const Tensor normed = mlp_norm_.forward(h);
  return add(h, moe_ ? moe_->forward(normed, aux_loss) : mlp_->forward(normed));
}

Transformer::Transformer(const InitContext& ctx, const Config& config)
    : config_(config),
      tp_(ctx.tp),
      embed_(ctx, config.model.vocab_size, config.model.d_model),
      final_norm_(ctx, config.model.d_model, config.model.norm_eps) {
  // Random draws happen in construction order (embed, blocks, lm_head; norms draw nothing), which is also
  // the registration order of named_parameters().
  add_child("embed", embed_);
  for (int64_t i = 0; i < config.model.n_layers; ++i) {
    blocks_.push_back(std::make_unique<Block>(ctx, config, i));
    add_child("blocks." + std::to_string(i), *blocks_.back());
  }
  add_child("final_norm", final_norm_);
  if (!config.model.tie_embeddings) {
    lm_head_ = std::make_unique<Linear>(ctx, config.model.d_model, config.model.vocab_size, ctx.init_std,
                                        TpSplit::rows);
    add_child("lm_head", *lm_head_);
  }
}

const Tensor& Transformer::positions(int64_t batch, int64_t seq_len, Device device) const {
  if (!positions_.defined() || positions_batch_ != batch || positions_seq_ != seq_len ||
      positions_.device() != device) {
    std::vector<int32_t> p(static_cast<size_t>(batch * seq_len));
    for (int64_t i = 0; i < batch * seq_len; ++i) p[i] = static_cast<int32_t>(i % seq_len);
    positions_ = from_vector<int32_t>(p, {batch * seq_len}, DType::i32, device);
    positions_batch_ = batch;
    positions_seq_ = seq_len;
  }
  return positions_;
}

Tensor Transformer::hidden(const Tensor& ids, DType compute, Tensor* aux_loss) const {
  NSA_CHECK(ids.dim() == 2, "[transformer] expected ids [batch, seq_len], got ", ids.desc());
  const Tensor& pos = positions(ids.size(0), ids.size(1), ids.device());
  Tensor x = embed_.forward(ids, compute);
  for (const auto& block : blocks_) x = block->forward(x, pos, aux_loss);
  return final_norm_.forward(x);
}

Tensor Transformer::logits(const Tensor& ids, DType compute, Tensor* aux_loss) const {
  const Tensor h = tp_enter(tp_, hidden(ids, compute, aux_loss));
  return lm_head_ ? lm_head_->forward(h) : linear(h, to(embed_.weight(), compute));
}

LossOutput Transformer::loss(const Tensor& ids, const Tensor& targets, DType compute) const {
  LossOutput out;
  const Tensor z = logits(ids, compute, &out.aux);
  if (tp_.size == 1) {
    out.ce = cross_entropy(z, targets);
  } else {
    const int64_t n = targets.numel();
    out.ce = dist::vocab_parallel_cross_entropy(reshape(z, {n, z.size(-1)}), reshape(targets, {n}),
                                                embed_.vocab_begin(), *tp_.comm);
  }
  if (out.aux.defined()) {
    // Every TP rank computes the whole auxiliary loss, and its gradient is summed over the ranks (router and
    // MoE input gradients are all-reduced): each rank back-propagates 1/tp of it.
    const Tensor aux = tp_.size == 1 ? out.aux : mul_scalar(out.aux, 1.0 / static_cast<double>(tp_.size));
    out.loss = add(out.ce, to(aux, out.ce.dtype()));
  } else {
    out.loss = out.ce;
  }
  return out;
}

}  // namespace nsa::nn
