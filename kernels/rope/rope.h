// Rotary embedding over contiguous x [tokens, heads, head_dim] with one position per token. Pair i
// (dims i and i + rot_dim/2) turns by pos · inv_freq[i]; the angle is formed and reduced in double (at
// position 10^5 a float angle would be off by ~1e-2 rad), then rotated in the accumulation type.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

inline constexpr int kMaxRopeHalf = 256;  // rot_dim ≤ 512

struct RopeParams {
  ScalarType dtype, pos_type;
  const void* x;
  void* out;
  const void* positions;
  int64_t tokens, heads, head_dim, rot_dim;
  bool inverse;                   // rotate by −angle (the backward)
  double inv_freq[kMaxRopeHalf];  // theta^(-2i/rot_dim), computed on the host like the CPU reference
};

Status launch_rope(const RopeParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
