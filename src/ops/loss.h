// Fused cross-entropy over logits: log-softmax and negative log-likelihood in one pass, mean over the rows
// whose target is not ignore_index. No host synchronisation: the count of rows stays on the device.
#pragma once

#include "core/tensor.h"

namespace nsa {

// logits [..., vocab] (f32/bf16/f64), targets [...] (i32/i64). Returns a 0-d tensor: f32 (f64 for f64
// logits).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);

}  // namespace nsa
