// Causal self-attention with grouped KV heads (GQA) and RoPE: the block's token mixer. attention.type
// picks the core: "full" (dense causal softmax attention, the baseline) or "nsa" (Native Sparse Attention,
// three branches mixed by learned gates; docs/nsa.md).
//
// Under tensor parallelism each rank owns n_kv_heads / tp whole GQA groups (their query heads, K/V heads
// and, for NSA, their gates and branch projections): wq/wk/wv are column-parallel, wo row-parallel, and
// the layer costs one all-reduce in the forward and one in the backward. NSA's selection is per group, so
// it never needs another rank's scores.
#pragma once

#include <memory>

#include "config/config.h"
#include "nn/layers.h"

namespace nsa::nn {

class NsaBranches;  // nsa_attention.h

class SelfAttention : public Module {
 public:
  SelfAttention(const InitContext& ctx, const ModelConfig& model, const AttentionConfig& attention);
  ~SelfAttention() override;
  // x [B, T, d_model]; positions [B·T] (i32) -> [B, T, d_model].
  Tensor forward(const Tensor& x, const Tensor& positions) const;

 private:
  ModelConfig model_;
  AttentionConfig attention_;
  TpGroup tp_;
  int64_t head_dim_, v_head_dim_;
  int64_t heads_, kv_heads_;  // on this TP rank
  Linear wq_, wk_, wv_, wo_;
  std::unique_ptr<NsaBranches> nsa_;  // attention.type == "nsa"
};

}  // namespace nsa::nn
