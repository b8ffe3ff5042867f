#include "nn/model_stats.h"

#include <algorithm>

#include "nn/nsa_attention.h"

namespace nsa::nn {

double average_attended_keys(const Config& config, int64_t seq_len) {
  if (config.attention.type != "nsa") return (static_cast<double>(seq_len) + 1.0) / 2.0;
  const NsaConfig& c = config.attention.nsa;
  double total = 0;
  for (int64_t t = 0; t < seq_len; ++t) {
    // Compressed blocks ending at or before t.
    const int64_t cmp = t + 1 >= c.cmp_block ? (t + 1 - c.cmp_block) / c.cmp_stride + 1 : 0;
    // Selected: up to n blocks among those started at or before t; the current block only up to t.
    const int64_t visible_blocks = t / c.slc_block + 1;
    const int64_t chosen = std::min(c.slc_top_n, visible_blocks);
    const int64_t slc = (chosen - 1) * c.slc_block + (t % c.slc_block + 1);
    const int64_t win = std::min(c.window, t + 1);
    total += static_cast<double>(cmp + slc + win);
  }
  return total / static_cast<double>(seq_len);
}

ModelStats model_stats(const Config& config) {
  const ModelConfig& m = config.model;
  const int64_t D = m.d_model, V = m.vocab_size, Hq = m.n_heads, Hkv = m.n_kv_heads;
  const int64_t Dk = m.resolved_head_dim(), Dv = m.resolved_v_head_dim();
  const int64_t attn = D * Hq * Dk + D * Hkv * Dk + D * Hkv * Dv + Hq * Dv * D;
  const int64_t attn_extra = config.attention.type == "nsa" ? nsa_parameter_count(m, config.attention.nsa) : 0;
  const int64_t dense_mlp = 3 * D * m.ffn_hidden;
  const MoeConfig& e = config.moe;
  const int64_t expert = 3 * D * e.expert_hidden;
  const int64_t shared = e.n_shared_experts * expert;

  ModelStats s;
  s.embedding_params = V * D * (m.tie_embeddings ? 1 : 2);
  s.params = s.embedding_params + D;  // + final norm
  s.active_params = s.params;
  double matmul_active = static_cast<double>(V * D);  // the LM head's product, tied or not
  for (int64_t layer = 0; layer < m.n_layers; ++layer) {
    const bool moe = e.enabled() && layer >= e.first_k_dense;
    const int64_t mlp_total = moe ? D * e.n_experts + e.n_experts * expert + shared : dense_mlp;
    const int64_t mlp_active = moe ? D * e.n_experts + e.top_k * expert + shared : dense_mlp;
    s.params += 2 * D + attn + attn_extra + mlp_total;
    s.active_params += 2 * D + attn + attn_extra + mlp_active;
    matmul_active += static_cast<double>(attn + attn_extra + mlp_active);
  }
  const int64_t T = config.training.seq_len;
  // Scores (q·k) and values (p·v): 2·Dk + 2·Dv FLOPs per query head and attended key, forward.
  const double attn_fwd = static_cast<double>(m.n_layers * Hq * 2 * (Dk + Dv)) * average_attended_keys(config, T);
  s.attention_flops_per_token = 3.0 * attn_fwd;
  s.train_flops_per_token = 6.0 * matmul_active + s.attention_flops_per_token;
  return s;
}

}  // namespace nsa::nn
