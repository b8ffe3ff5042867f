// How each parameter of the Transformer is laid out across the TP ranks (Megatron-style, attention split
// by GQA groups, MoE experts split whole). The one table every TP-aware piece reads: the model (which slice
// to keep after a full init), the trainer (which gradients need a TP all-reduce, which count once in the
// grad norm), checkpoints (gather on save, slice on load) and nsa-ckpt reshard.
//
//   split(dim)   each rank keeps rows/columns [shard_begin(n, r, tp), shard_begin(n, r+1, tp)) of `dim`:
//                wq/wk/wv/NSA gate and per-branch K/V rows (dim 0, whole GQA groups), wo columns (dim 1),
//                SwiGLU w_gate/w_up rows and w_down columns, embed/lm_head vocabulary rows (dim 0;
//                uneven when tp does not divide the vocabulary).
//   owned(rank)  the whole tensor lives on one TP rank: routed MoE expert e on rank e / (n_experts / tp).
//   replicated   every rank holds the same tensor: norms; the MoE router and NSA's compression MLPs φ, whose
//                gradients are partial sums per rank (partial_grad: all-reduced over TP before the step).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace nsa::dist {

struct TpShard {
  enum class Kind { replicated, split, owned };
  Kind kind = Kind::replicated;
  int dim = 0;                // split: the dimension that is cut
  int owner = 0;              // owned: the TP rank holding the tensor
  bool partial_grad = false;  // replicated: each rank's gradient is a partial sum (TP all-reduce it)
};

// First index of rank r's chunk when n items are cut into tp contiguous chunks: floor(r·n / tp).
inline int64_t shard_begin(int64_t n, int r, int tp) { return n * r / tp; }
inline int64_t shard_size(int64_t n, int r, int tp) { return shard_begin(n, r + 1, tp) - shard_begin(n, r, tp); }

// The layout of parameter `name` (a dotted name of nn::Transformer built from `config`) at TP size tp.
// Throws InputError for a name the model does not have.
TpShard tp_shard(const std::string& name, const Config& config, int tp);

// Checks that `config` can be split tp ways (n_kv_heads and, for MoE, n_experts divisible by tp);
// InputError "<source>: parallel.tensor_parallel_size: ..." otherwise.
void validate_tp(const Config& config, int tp);

}  // namespace nsa::dist
