// Fused causal grouped-query attention (FlashAttention-2 style) for bf16, head dims 64 and 128: tiles of
// Q, K, V in shared memory, online softmax, no T×T buffer, and KV tiles that a causal / sliding-window mask
// hides entirely are never visited (a window w costs O(T·w)). Same conventions as the materialized path
// (src/ops/cuda/attention.cpp): query head h reads KV head h / (Hq / Hkv); query t sees keys s with
// t − window < s <= t (window 0: every s <= t); lse [B, Hq, T] f32 holds log Σ exp(scale·q·k).
//
// Tensors are [B, T, H, D] with unit stride on D; the strides below are in elements. Every pointer must be
// 16-byte aligned and every stride a multiple of 8 (16-byte rows for cp.async): flash_attention_supported
// says whether a call can take this path, the launchers refuse one that cannot.
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

// Element strides of a [B, T, H, D] operand (the D stride is 1).
struct BthStrides {
  int64_t batch = 0, seq = 0, head = 0;
};

struct FlashAttentionShape {
  int64_t batch = 0, seq = 0, heads_q = 0, heads_kv = 0, head_dim = 0;
  int64_t window = 0;  // 0: unlimited
  float scale = 0.f;   // multiplies q·k
};

// out = softmax(scale·q·kᵀ, masked)·v and lse [B, Hq, T] (contiguous, f32).
struct FlashForwardParams {
  FlashAttentionShape shape;
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  BthStrides q_strides, k_strides, v_strides, out_strides;
};

// dq, dk, dv overwritten (no accumulation, no atomics: two runs give the same bits). `delta` is a workspace
// of B·Hq·T floats (receives rowsum(dout ∘ out)); lse is the forward's.
struct FlashBackwardParams {
  FlashAttentionShape shape;
  const void *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr, *dout = nullptr;
  const float* lse = nullptr;
  float* delta = nullptr;
  // delta_ready: `delta` already holds rowsum(dout ∘ out) (a caller that had it; the kernel skips it).
  // accumulate_dq: dq += instead of dq = (only where flash_backward_accumulates holds).
  bool delta_ready = false;
  bool accumulate_dq = false;
  void *dq = nullptr, *dk = nullptr, *dv = nullptr;
  BthStrides q_strides, k_strides, v_strides, out_strides, dout_strides, dq_strides, dk_strides, dv_strides;
};

// True when the fused kernels handle this call: bf16, Dk = Dv ∈ {64, 128}, sizes within the grid limits.
// Pointer alignment and strides are checked by the launchers (flash_operand_ok).
bool flash_attention_supported(ScalarType dtype, int64_t dim_k, int64_t dim_v);
// 16-byte aligned base and strides that keep every row 16-byte aligned.
bool flash_operand_ok(const void* ptr, const BthStrides& strides);

// Which kernels the launchers may use: automatic takes the Hopper group-row wgmma kernels
// (group_attention.h) where they apply and the mma.sync kernels elsewhere; mma_sync always takes the latter
// (the tests cover both paths on one device, the benchmarks compare them). Process-wide; not for use while
// another thread launches attention.
enum class FlashKernel { automatic, mma_sync };
void set_flash_kernel(FlashKernel choice);
FlashKernel flash_kernel();

Status launch_flash_attention_forward(const FlashForwardParams& p, cudaStream_t stream);
Status launch_flash_attention_backward(const FlashBackwardParams& p, cudaStream_t stream);
bool flash_backward_accumulates(const FlashBackwardParams& p);

}  // namespace nsa::kernels
