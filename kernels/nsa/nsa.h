// Native Sparse Attention kernels (docs/nsa.md, "CUDA kernels"): the compressed branch (flash-style,
// block-causal), the fused block selection (scores recomputed from lse, eq. 9 weights, group sum, top-n
// kept on chip), and the group-centric selected branch (paper §3.4), forward and backward.
//
// Layouts as in ops/nsa.h: q [B, T, Hq, Dk]; keys [B, S, Hkv, Dk]; values [B, S, Hkv, Dv] (S = Nc for the
// compressed branch, T for the selected one); out [B, T, Hq, Dv]; lse [B, Hq, T] (f32; f64 for f64), −inf
// for a row that sees no key. All tensors contiguous.
//
// bf16 with (Dk, Dv) in {(64, 64), (128, 128), (192, 128)} runs on tensor cores (mma.sync m16n8k16, f32
// accumulation); every other case (f32, f64, other head dims, GQA groups over 16 in the selected branch)
// runs a CUDA-core path that accumulates in double, slow but exact enough for 1e-5 checks against the CPU.
// The backward passes are deterministic (no floating-point atomics): dK/dV are summed per key tile in a
// fixed order, long key tiles split into chunks whose f32 partials a second kernel adds in chunk order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

// Block geometry (ops/backend.h NsaBlocks).
struct NsaGeometry {
  int64_t cmp_block = 0, cmp_stride = 0, slc_block = 0, top_n = 0, init_blocks = 0, local_blocks = 0;
};

// Sizes of one attention call: q [batch, seq, heads_q, dim_k], k [batch, keys, heads_kv, dim_k],
// v [batch, keys, heads_kv, dim_v].
struct NsaSizes {
  int64_t batch = 0, seq = 0, heads_q = 0, heads_kv = 0, keys = 0, dim_k = 0, dim_v = 0;
};

// Compressed attention forward: query t sees compressed key i iff i·cmp_stride + cmp_block − 1 <= t.
struct NsaCmpForwardParams {
  ScalarType dtype;
  NsaSizes sz;  // keys = Nc
  NsaGeometry geo;
  double scale;
  const void *q, *k, *v;
  void *out, *lse;
};

// Backward of either branch: overwrites dq, dk, dv. `workspace` holds nsa_*_backward_workspace bytes.
struct NsaBackwardParams {
  ScalarType dtype;
  NsaSizes sz;
  NsaGeometry geo;
  double scale;
  const void *dout, *q, *k, *v, *out, *lse;
  void *dq, *dk, *dv;
  // Selected branch only: the block indices [B, T, Hkv, n_indices] (i32 or i64, −1 = empty slot).
  const void* indices = nullptr;
  ScalarType index_type = ScalarType::i32;
  int64_t n_indices = 0;
  unsigned* error_flag = nullptr;  // kIndexOutOfRange when an index is outside [−1, ceil(T / slc_block))
  void* workspace = nullptr;
  // From a caller that holds more than this branch (nsa_attention's backward): rowsum(dout ∘ out), f32
  // [B, Hq, T], already computed (the bf16 tensor-core paths use it, the others compute their own); and dq
  // accumulated into rather than overwritten, on the paths nsa_*_backward_accumulates names (the caller
  // adds the others itself).
  const float* delta_in = nullptr;
  bool accumulate_dq = false;
};

// Selection: indices i32 [B, T, Hkv, top_n] from q, kc [B, Nc, Hkv, Dk] and the compressed lse.
struct NsaSelectParams {
  ScalarType dtype;
  NsaSizes sz;  // keys = Nc; dim_v unused
  NsaGeometry geo;
  double scale;
  const void *q, *kc, *lse;
  int32_t* indices;
  void* workspace = nullptr;
};

// Selected attention forward.
struct NsaSlcForwardParams {
  ScalarType dtype;
  NsaSizes sz;  // keys = T
  NsaGeometry geo;
  double scale;
  const void *q, *k, *v;
  const void* indices;
  ScalarType index_type;
  int64_t n_indices;
  void *out, *lse;
  unsigned* error_flag;
};

// Where the selected branch's backward takes dQ from: automatic lets the Hopper dK/dV kernel emit it as
// per-slot partials when the selection blocks fit one 64-key pass (kernels/nsa/nsa_slc.cu); query_side always
// runs the query-side dQ kernel (the tests cover both paths on one device, the benchmark compares them).
// Process-wide; set it before the workspace is sized, not while another thread launches NSA.
enum class SlcDqKernel { automatic, query_side };
void set_slc_dq_kernel(SlcDqKernel choice);
// The rows of one KV head (T·G) from which the Hopper backward of the compressed branch and of the
// causal / window attention runs two warpgroups per program (nsa_cmp.cu); negative: the default (2^19). For
// tests that cover both variants at small sizes. Process-wide, as set_slc_dq_kernel.
void set_wide_backward_rows(int64_t rows);
// How the warpgroups of the Hopper group-row forward (compressed branch, sliding window, causal attention)
// share their K/V stages (nsa_cmp.cu): automatic, an mbarrier ring of 4 stages that lets them drift apart;
// ring3, the same with 3 stages; lockstep, two block barriers per tile (the kernel before the ring). For
// tests and same-run comparisons. Process-wide, as set_slc_dq_kernel.
enum class GroupForwardSync { automatic, ring3, lockstep };
void set_group_forward_sync(GroupForwardSync choice);

size_t nsa_cmp_backward_workspace(const NsaBackwardParams& p);
size_t nsa_slc_backward_workspace(const NsaBackwardParams& p);
size_t nsa_select_workspace(const NsaSelectParams& p);

Status launch_nsa_cmp_forward(const NsaCmpForwardParams& p, cudaStream_t stream);
Status launch_nsa_cmp_backward(const NsaBackwardParams& p, cudaStream_t stream);
bool nsa_cmp_backward_accumulates(const NsaBackwardParams& p);
bool nsa_slc_backward_accumulates(const NsaBackwardParams& p);
Status launch_nsa_select(const NsaSelectParams& p, cudaStream_t stream);
Status launch_nsa_slc_forward(const NsaSlcForwardParams& p, cudaStream_t stream);
Status launch_nsa_slc_backward(const NsaBackwardParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
