// Native Sparse Attention (Yuan et al. 2025; docs/nsa.md) as ops: the math of one attention layer, the
// model layer owning the parameters and the projections. Three branches read the same queries:
//   compressed (cmp)  attention over one learned summary key/value per block of l tokens (stride d),
//   selected   (slc)  attention over the tokens of the top-n blocks of l' tokens, ranked by the cmp scores,
//   window     (win)  dense attention over the last w tokens (ops/attention.h),
// and a sigmoid gate per head and branch mixes them (paper eq. 5).
//
// Layout everywhere: [B, T, H, D] (batch, token, head, head dim); Hq a multiple of Hkv, query head h reads
// KV head h / (Hq / Hkv). Dk (queries, keys) and Dv (values, outputs) may differ. `scale` = 0 means
// 1/sqrt(Dk). Every function checks its inputs and throws nsa::Error naming the op.
#pragma once

#include <cstdint>

#include "config/config.h"  // NsaConfig: a plain struct (no link dependency on the config library)
#include "core/tensor.h"

namespace nsa {

// Number of complete compression blocks of a sequence of `seq` tokens: floor((T − l)/d) + 1 when T >= l,
// else 0. Block i covers tokens [i·d, i·d + l).
int64_t nsa_num_cmp_blocks(int64_t seq, const NsaConfig& cfg);
// Number of selection blocks, ceil(T / l'). Block j covers tokens [j·l', (j+1)·l') (the last one may be
// partial).
int64_t nsa_num_slc_blocks(int64_t seq, const NsaConfig& cfg);

// Compression φ (paper eq. 7): each block of l consecutive tokens (stride d) plus a learned intra-block
// position embedding, flattened and mapped by a two-layer MLP to one vector:
//   φ(block) = w2 · silu(w1 · flatten(block + pos_emb))
// x [B, T, Hkv, D]; pos_emb [l, D]; w1 [hidden, l·D]; w2 [Dout, hidden] (PyTorch layout, no biases); the
// weights are shared by the KV heads. Returns [B, Nc, Hkv, Dout], Nc = nsa_num_cmp_blocks(T). Differentiable
// in all four inputs (composed of views, contiguous, linear, add, silu). Computed without gathering the
// overlapping blocks: with l = S·d and w1 split by columns into S pieces W1_s (block offsets s·d … s·d+d−1),
//   w1 · flatten(block_i + pos_emb) = Σ_s W1_s · flatten(x[(i+s)·d : (i+s+1)·d]) + w1 · flatten(pos_emb),
// so one copy of x (its d-token segments side by side) feeds one GEMM against all S pieces, and the blocks
// are summed from its S·hidden-wide output (docs/nsa.md).
Tensor nsa_compress(const Tensor& x, const Tensor& pos_emb, const Tensor& w1, const Tensor& w2,
                    const NsaConfig& cfg);

namespace detail {
// The same φ by gathering every block into [B, Nc, l, Hkv, D] (l/d times the size of x), the definition
// written out: for tests of nsa_compress.
Tensor nsa_compress_gather(const Tensor& x, const Tensor& pos_emb, const Tensor& w1, const Tensor& w2,
                           const NsaConfig& cfg);
}  // namespace detail

struct NsaCmpResult {
  Tensor out;  // [B, T, Hq, Dv], differentiable in q, kc, vc
  Tensor lse;  // [B, Hq, T] log-sum-exp of each row's scaled scores (f32; f64 for f64; the layout of
               // ops/attention's), −inf for rows that see no block. Not differentiable. With q and kc it
               // gives back p_cmp (eq. 8).
};

// Compressed attention (paper eq. 8 over the keys of eq. 7): q [B, T, Hq, Dk], kc [B, Nc, Hkv, Dk],
// vc [B, Nc, Hkv, Dv], Nc = nsa_num_cmp_blocks(T). Query t sees compressed block i iff the block's last
// token i·d + l − 1 <= t. A query that sees no block (t < l − 1) gets out = 0 and lse = −inf.
NsaCmpResult nsa_compressed_attention(const Tensor& q, const Tensor& kc, const Tensor& vc,
                                      const NsaConfig& cfg, double scale = 0.0);

// Block selection (paper eqs. 9–11), not differentiable. From the compressed branch's probabilities
// p_cmp = exp(scale·q·kc − lse) (recomputed from q, kc and the lse of nsa_compressed_attention, called
// with the same scale), for every query t and KV head g:
//   importance[j] = Σ_{h in group g} Σ_i p_cmp[h, i] · (tokens shared by cmp block i and slc block j) / d
//   forced: blocks [0, slc_init_blocks) and the slc_local_blocks blocks ending with the one holding t;
//   the other slc_top_n − |forced| slots: the visible blocks (j·l' <= t) of largest importance, ties to the
//   lower index. Returns i32 [B, T, Hkv, slc_top_n]: the chosen blocks ascending, then −1 for unused slots.
Tensor nsa_select_blocks(const Tensor& q, const Tensor& kc, const Tensor& lse, const NsaConfig& cfg,
                         double scale = 0.0);

// Selected attention (paper eq. 12 then eq. 8's softmax): q [B, T, Hq, Dk], k [B, T, Hkv, Dk],
// v [B, T, Hkv, Dv], indices [B, T, Hkv, n] (i32/i64; distinct block numbers in [0, ceil(T/l')) or −1 =
// empty slot). Query t of head h attends to the tokens s <= t of the blocks indices[b, t, h / group, :].
// A query with no such token gets 0. Returns [B, T, Hq, Dv], differentiable in q, k, v.
Tensor nsa_selected_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& indices,
                              const NsaConfig& cfg, double scale = 0.0);

// Everything one NSA layer feeds in after its projections. With cfg.separate_kv false the model passes the
// same key (and value) tensors for the three branches.
struct NsaBranchInputs {
  Tensor q;             // [B, T, Hq, Dk], shared by the branches
  Tensor k_cmp, v_cmp;  // [B, T, Hkv, Dk], [B, T, Hkv, Dv]: compressed by φ
  Tensor k_slc, v_slc;  // the same shapes: the selected branch's tokens
  Tensor k_win, v_win;  // the same shapes: the sliding window's tokens
  Tensor gate_logits;   // [B, T, Hq, 3]: branches (cmp, slc, win); the gates are their sigmoids
  Tensor cmp_pos_k, cmp_w1_k, cmp_w2_k;  // φ of the keys: [l, Dk], [hidden, l·Dk], [Dk, hidden]
  Tensor cmp_pos_v, cmp_w1_v, cmp_w2_v;  // φ of the values: [l, Dv], [hidden, l·Dv], [Dv, hidden]
  Tensor slc_indices;  // optional [B, T, Hkv, n]: use this selection instead of computing it (tests)
};

// All of it (paper eq. 5): o = σ(g_cmp)·o_cmp + σ(g_slc)·o_slc + σ(g_win)·o_win, [B, T, Hq, Dv]. The
// branches and the gate form one autograd node (its backward shares the gate's row sums and one dq).
Tensor nsa_attention(const NsaBranchInputs& in, const NsaConfig& cfg, double scale = 0.0);

namespace detail {
// nsa_attention as the composition of the branch ops and nsa_gate_combine (one autograd node each): the
// definition the fused node is tested against, and its path for empty inputs.
Tensor nsa_attention_composed(const NsaBranchInputs& in, const NsaConfig& cfg, double scale = 0.0);
}  // namespace detail

// The gated sum of eq. 5 as one fused op: gate_logits [B, T, H, 3] (cmp, slc, win), o_cmp, o_slc, o_win
// [B, T, H, Dv], one dtype and device. Returns [B, T, H, Dv] =
//   σ(gate_logits[..., 0])·o_cmp + σ(gate_logits[..., 1])·o_slc + σ(gate_logits[..., 2])·o_win,
// differentiable in all four inputs. Computes in f32 (f64 for f64), rounding each output once.
Tensor nsa_gate_combine(const Tensor& gate_logits, const Tensor& o_cmp, const Tensor& o_slc,
                        const Tensor& o_win);

}  // namespace nsa
