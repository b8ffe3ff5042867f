// Rotary position embedding (Su et al. 2021), half-split convention (dims i and i + rot_dim/2 form a pair,
// as in Llama/NeoX, so exported weights match Hugging Face). The angle of pair i at position p is
// p · theta^(-2i / rot_dim); dims past rot_dim pass through unchanged.
#pragma once

#include "core/tensor.h"

namespace nsa {

// x [..., heads, head_dim] whose leading dims flatten to tokens; positions: one i32/i64 per token (so
// packed documents can restart their positions). rot_dim = 0 means head_dim.
Tensor rope(const Tensor& x, const Tensor& positions, double theta = 10000.0, int64_t rot_dim = 0);

}  // namespace nsa
