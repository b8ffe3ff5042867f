// The differentiable communication of tensor parallelism (Megatron-LM's f and g), and the two
// vocabulary-parallel layers built on them. Every rank of the TP group runs the same code on the same
// (replicated) activations; parameters are this rank's shard (dist/sharding.h).
//
//   copy_to_tp      forward identity, backward all-reduce: where a replicated activation enters
//                   rank-local work (column-parallel linears, local experts), each rank's gradient is a
//                   partial sum.
//   reduce_from_tp  forward all-reduce, backward identity: where rank-local partial results (row-parallel
//                   linears, local experts) become one replicated activation.
// With a group of size 1 both return their input: the single-process model records no extra nodes.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "dist/communicator.h"

namespace nsa::dist {

Tensor copy_to_tp(const Tensor& x, Communicator& tp);
Tensor reduce_from_tp(const Tensor& x, Communicator& tp);

// Embedding lookup when each rank holds rows [begin, begin + weight_local.size(0)) of the vocabulary:
// ids [...] -> [..., dim], replicated (rows from other shards are summed in by the all-reduce).
Tensor vocab_parallel_embedding(const Tensor& weight_local, const Tensor& ids, int64_t begin, Communicator& tp);

// Mean next-token cross-entropy when each rank holds the logits of vocabulary columns
// [begin, begin + logits_local.size(-1)): logits_local [N, V_local], targets [N] (i32/i64, all inside the
// full vocabulary; no ignore index). Computed in f32 (f64 for f64 logits) from the global max, the global
// Σ exp and the target logit, each all-reduced over TP; the result (0-d) is the same on every rank and
// equals cross_entropy of the gathered logits.
Tensor vocab_parallel_cross_entropy(const Tensor& logits_local, const Tensor& targets, int64_t begin,
                                    Communicator& tp);

}  // namespace nsa::dist
