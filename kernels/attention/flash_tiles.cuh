// Building blocks of the flash attention kernels: bf16 tensor-core MMA (mma.sync m16n8k16, f32
// accumulate), ldmatrix fragment loads from swizzled shared-memory tiles, cp.async tile copies, and the
// fragment layouts they share. Included by the flash attention .cu files only.
//
// Fragment layouts: kernels/common/mma_sync.cuh.
//
// Shared tiles are [rows][D] bf16 with D/8 chunks of 16 bytes per row, chunk c of row r stored at chunk
// c ^ (r & 7): the 8 rows an ldmatrix phase reads (8 consecutive rows, one chunk each) then fall in 8
// distinct bank groups, and the same holds for the row-wise 16-byte cp.async writes.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/attention/flash_attention.h"
#include "kernels/common/mma_sync.cuh"

namespace nsa::kernels {
// Host checks shared by the forward and backward launchers (flash_attention.cu): a message when the shape
// is outside what the kernels handle, else nullptr.
const char* flash_shape_error(const FlashAttentionShape& z);
// The window as the kernels take it: 0 when unlimited or >= T (so t − window stays in int range).
int flash_window(const FlashAttentionShape& z);
}  // namespace nsa::kernels

namespace nsa::kernels::flash {

using bf16 = __nv_bfloat16;
using ptx::acc_to_a;
using ptx::cp_async_16;
using ptx::cp_async_4;
using ptx::cp_async_commit;
using ptx::cp_async_wait;
using ptx::ldmatrix_x4;
using ptx::ldmatrix_x4_trans;
using ptx::mma_bf16;
using ptx::pack_bf16;
using ptx::smem_u32;

// Element offset of (row, 16-byte chunk) in a swizzled tile of width D.
template <int D>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  static_assert(D % 64 == 0, "rows must hold a multiple of 8 chunks for the 8-row swizzle");
  return row * D + ((chunk ^ (row & 7)) << 3);
}

// Lane-dependent parts of the ldmatrix addresses. ldmatrix.x4: lanes 8·m .. 8·m + 7 give the row
// addresses of matrix m; register m of every lane receives a piece of matrix m.
struct LaneRoles {
  int sub;    // lane & 7: row within the 8×8 matrix (and the swizzle key, tiles start at multiples of 8)
  int mat;    // lane >> 3: which of the four matrices
  int group;  // lane >> 2: fragment row (C and A), n index (B)
  int quad;   // lane & 3: fragment column pair
  __device__ __forceinline__ explicit LaneRoles(int lane)
      : sub(lane & 7), mat(lane >> 3), group(lane >> 2), quad(lane & 3) {}
};

// A fragment of rows [row0, row0 + 16) × cols [16·kk, 16·kk + 16) of a row-major tile (Q, dO, K, V as the
// left operand). Matrices: (rows 0-7, cols 0-7), (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (8-15, 8-15).
template <int D>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16* tile, int row0, int kk,
                                       const LaneRoles& l) {
  const int row = row0 + l.sub + ((l.mat & 1) << 3);
  ldmatrix_x4(a, smem_u32(tile + swizzled<D>(row, 2 * kk + (l.mat >> 1))));
}

// B fragments of two n-blocks for X·Yᵀ where Y is stored [n][k] (keys × dims): n rows [n0, n0 + 16),
// k cols [16·kk, 16·kk + 16). b[0], b[1]: n-block n0; b[2], b[3]: n-block n0 + 8.
template <int D>
__device__ __forceinline__ void load_b_rows(uint32_t (&b)[4], const bf16* tile, int n0, int kk,
                                            const LaneRoles& l) {
  const int row = n0 + l.sub + ((l.mat >> 1) << 3);
  ldmatrix_x4(b, smem_u32(tile + swizzled<D>(row, 2 * kk + (l.mat & 1))));
}

// B fragments of two n-blocks for X·Y where Y is stored [k][n] (keys × dims): k rows [k0, k0 + 16),
// n cols [16·nn, 16·nn + 16), transposed on load. b[0], b[1]: n-block 16·nn; b[2], b[3]: 16·nn + 8.
template <int D>
__device__ __forceinline__ void load_b_cols(uint32_t (&b)[4], const bf16* tile, int k0, int nn,
                                            const LaneRoles& l) {
  const int row = k0 + l.sub + ((l.mat & 1) << 3);
  ldmatrix_x4_trans(b, smem_u32(tile + swizzled<D>(row, 2 * nn + (l.mat >> 1))));
}

// Copies rows [0, kRows) of a [rows][D] global tile (row stride in elements) into a swizzled shared tile,
// asynchronously, by all kThreads threads; rows >= valid_rows are zero-filled (never read). Row 0 must exist.
template <int kRows, int D, int kThreads>
__device__ __forceinline__ void copy_tile_async(bf16* tile, const bf16* src, int64_t row_stride,
                                                int valid_rows) {
  constexpr int kChunks = D / 8;
  static_assert((kRows * kChunks) % kThreads == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int i = 0; i < kRows * kChunks / kThreads; ++i) {
    const int idx = i * kThreads + static_cast<int>(threadIdx.x);
    const int row = idx / kChunks, chunk = idx % kChunks;
    const bool valid = row < valid_rows;
    const bf16* from = src + (valid ? row : 0) * row_stride + chunk * 8;
    cp_async_16(smem_u32(tile + swizzled<D>(row, chunk)), from, valid);
  }
}

// Writes a warp's 16 rows × D of f32 accumulators (C layout, n-block j = cols 8j..8j+7) as bf16 into a
// swizzled shared tile at rows [row0, row0 + 16), each value multiplied by its row's factor.
template <int D>
__device__ __forceinline__ void store_acc_rows(bf16* tile, int row0, const float (&acc)[D / 8][4],
                                               float factor_lo, float factor_hi, const LaneRoles& l) {
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    const int r_lo = row0 + l.group, r_hi = r_lo + 8;
    *reinterpret_cast<uint32_t*>(tile + swizzled<D>(r_lo, j) + 2 * l.quad) =
        pack_bf16(acc[j][0] * factor_lo, acc[j][1] * factor_lo);
    *reinterpret_cast<uint32_t*>(tile + swizzled<D>(r_hi, j) + 2 * l.quad) =
        pack_bf16(acc[j][2] * factor_hi, acc[j][3] * factor_hi);
  }
}

// Copies a warp's 16 rows of a swizzled shared tile to global memory (16-byte stores, consecutive lanes on
// consecutive chunks of a row); rows >= valid_rows are skipped.
template <int D>
__device__ __forceinline__ void write_rows(bf16* dst, int64_t row_stride, const bf16* tile, int row0,
                                           int valid_rows, int lane) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = 0; i < 16 * kChunks / 32; ++i) {
    const int idx = i * 32 + lane;
    const int row = idx / kChunks, chunk = idx % kChunks;
    if (row < valid_rows) {
      const uint4 v = *reinterpret_cast<const uint4*>(tile + swizzled<D>(row0 + row, chunk));
      *reinterpret_cast<uint4*>(dst + row * row_stride + chunk * 8) = v;
    }
  }
}

// Reductions over the 4 lanes of a quad (the lanes that share a fragment row).
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Which keys a query sees: t − window < s <= t (window 0: every s <= t).
struct CausalWindow {
  int window;  // 0, or 1 .. seq − 1 (a window >= seq is unlimited and passed as 0)
  __device__ __forceinline__ bool visible(int t, int s) const {
    return s <= t && (window == 0 || s > t - window);
  }
  // Whether every (t, s) with t in [t_lo, t_hi] and s in [s_lo, s_hi] is visible.
  __device__ __forceinline__ bool all_visible(int t_lo, int t_hi, int s_lo, int s_hi) const {
    return s_hi <= t_lo && (window == 0 || s_lo > t_hi - window);
  }
};

// Where a forward or dQ CTA works: grid x enumerates (query tile, head slice) with the latest tiles first
// (they see the most keys, so the long CTAs start early), grid y the batch. The forward and dQ kernels must
// agree on this and on the key tiles a query tile visits, so both read it from here.
template <int kTokens, int kKeys, int kHeads>
struct QueryTile {
  int b, h0, kv_head, t0;
  int first, last;  // key tiles [first, last] hold every key some query of the tile may see

  __device__ __forceinline__ QueryTile(int slices, int window, int seq, int group) {
    const int slice = static_cast<int>(blockIdx.x) % slices;
    const int tile = static_cast<int>(gridDim.x) / slices - 1 - static_cast<int>(blockIdx.x) / slices;
    b = blockIdx.y;
    h0 = slice * kHeads;
    kv_head = h0 / group;
    t0 = tile * kTokens;
    first = (window > 0 ? max(0, t0 - window + 1) : 0) / kKeys;
    last = (min(seq, t0 + kTokens) - 1) / kKeys;
  }
};

}  // namespace nsa::kernels::flash
