// The language model: token embedding → n_layers pre-norm decoder blocks (RMSNorm → attention → residual,
// RMSNorm → SwiGLU MLP or MoE → residual) → final RMSNorm → LM head (tied to the embedding or not).
// Parameter names: embed.weight, blocks.<i>.{attn_norm,attn,mlp_norm,mlp|moe}..., final_norm.weight,
// lm_head.weight (untied only).
//
// Tensor parallelism (ctx.tp.size > 1; dist/sharding.h): the embedding and LM head are vocabulary-parallel
// (logits() returns this rank's vocabulary columns; loss() uses dist::vocab_parallel_cross_entropy), the
// blocks are Megatron-style (attention by GQA groups, SwiGLU by hidden units, MoE by whole experts).
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "nn/attention.h"
#include "nn/layers.h"
#include "nn/mlp.h"
#include "nn/moe.h"

namespace nsa::nn {

class Block : public Module {
 public:
  Block(const InitContext& ctx, const Config& config, int64_t layer);
  // Adds the MoE auxiliary loss (if any) to *aux_loss.
  Tensor forward(const Tensor& x, const Tensor& positions, Tensor* aux_loss) const;

 private:
  RMSNorm attn_norm_;
  SelfAttention attn_;
  RMSNorm mlp_norm_;
  std::unique_ptr<SwiGLU> mlp_;
  std::unique_ptr<MoE> moe_;
};

struct LossOutput {
  Tensor loss;  // what backward starts from: cross-entropy + auxiliary losses (0-d f32/f64)
  Tensor ce;    // the language-model cross-entropy alone (what is logged as "loss")
  Tensor aux;   // the MoE load-balancing loss (undefined for dense models)
};

class Transformer : public Module {
 public:
  // Parameters are drawn from ctx.gen in registration order (the order of named_parameters()).
  Transformer(const InitContext& ctx, const Config& config);

  // ids [B, T] (i32/i64) -> logits [B, T, vocab] in `compute` dtype (under TP: this rank's columns
  // [vocab_begin(), + size(-1)) of the vocabulary).
  Tensor logits(const Tensor& ids, DType compute, Tensor* aux_loss = nullptr) const;
  // Mean next-token cross-entropy against targets [B, T], plus the auxiliary losses.
  LossOutput loss(const Tensor& ids, const Tensor& targets, DType compute) const;

  const Config& config() const { return config_; }
  int64_t vocab_begin() const { return embed_.vocab_begin(); }

 private:
  Tensor hidden(const Tensor& ids, DType compute, Tensor* aux_loss) const;
  const Tensor& positions(int64_t batch, int64_t seq_len, Device device) const;

  Config config_;
  TpGroup tp_;
  Embedding embed_;
  std::vector<std::unique_ptr<Block>> blocks_;
  RMSNorm final_norm_;
  std::unique_ptr<Linear> lm_head_;  // null when tied to the embedding
  mutable Tensor positions_;         // [B·T] i32: 0..T-1 per sequence, cached for the last shape
  mutable int64_t positions_batch_ = 0, positions_seq_ = 0;
};

}  // namespace nsa::nn
