// The Hopper path of the fused causal / sliding-window attention: the group-row wgmma kernels that the
// compressed NSA branch runs on (kernels/nsa/nsa_cmp.cu), over raw keys instead of compressed ones. The rows
// of one program are (token, head) pairs of one GQA group, so each K/V tile in shared memory serves every
// head of the group; see docs/nsa.md ("Sliding window"). The flash launchers (flash_attention.h) route a call
// here when group_attention_ok holds and the kernel choice allows it; otherwise they run the mma.sync
// kernels.
#pragma once

#include "kernels/attention/flash_attention.h"

namespace nsa::kernels {

// sm_90a code in this build, a compute-capability 9.0 device, and contiguous [B, T, H, D] operands.
bool group_attention_ok(const FlashForwardParams& p);
bool group_attention_ok(const FlashBackwardParams& p);
Status launch_group_attention_forward(const FlashForwardParams& p, cudaStream_t stream);
// p.delta must already hold rowsum(dO ∘ O) [B, Hq, T].
Status launch_group_attention_backward(const FlashBackwardParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
