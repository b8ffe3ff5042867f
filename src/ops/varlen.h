// Packed variable-length batches: documents laid end to end along the token dim of a [1, total, H, D]
// batch, document i covering tokens [cu_seqlens[i], cu_seqlens[i+1]) (the cu_seqlens convention of
// FlashAttention's varlen API). Every document runs as its own sequence: no query sees another document's
// keys, NSA's compression and selection blocks restart at each document's first token, and the sliding
// window is clipped at the document start.
//
// The boundaries are host numbers (the data loader knows them), so splitting needs no device sync. This
// version runs the fixed-length op once per document on views and concatenates (autograd flows through
// narrow/cat); kernels that read cu_seqlens natively can replace it without changing the interface.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/nsa.h"

namespace nsa {

// Checks cu_seqlens for `total` tokens: starts at 0, strictly increasing, ends at total. Throws nsa::Error
// naming `op`.
void check_cu_seqlens(const char* op, const std::vector<int64_t>& cu_seqlens, int64_t total);

// attention() per document. q [1, total, Hq, Dk], k [1, total, Hkv, Dk], v [1, total, Hkv, Dv].
Tensor attention_varlen(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& cu_seqlens,
                        double scale = 0.0, int64_t window = 0);

// nsa_attention() per document; every [1, total, ...] field of `in` is split the same way.
Tensor nsa_attention_varlen(const NsaBranchInputs& in, const std::vector<int64_t>& cu_seqlens, const NsaConfig& cfg,
                            double scale = 0.0);

}  // namespace nsa
