// Device helpers of the NSA kernels: tensor-core fragments (ldmatrix, mma.sync m16n8k16 bf16 → f32),
// asynchronous copies, the block geometry, and the workspace carving shared by the launchers.
//
// Fragment conventions (PTX ISA, mma.m16n8k16 with .bf16): lane = threadIdx.x % 32, quad row
// r = lane / 4, quad column c = (lane % 4) · 2.
//   A (16×16, row-major): a0 (r, c..c+1), a1 (r+8, c..), a2 (r, c+8..), a3 (r+8, c+8..)
//   B (16×8, k × n):     b0 (k = c..c+1, n = r), b1 (k = c+8.., n = r)
//   C (16×8):            c0,c1 (r, c..c+1), c2,c3 (r+8, c..c+1)
// Shared-memory tiles are row-major with rows padded by 8 elements (16 bytes), so the 8 row addresses of
// one ldmatrix phase fall into different banks.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "kernels/common/device_utils.cuh"
#include "kernels/common/fast_div.h"
#include "kernels/common/mma_sync.cuh"
#include "kernels/nsa/nsa.h"

namespace nsa::kernels::nsa_impl {

using ptx::acc_to_a;
using ptx::cp_async_commit;
using ptx::cp_async_wait;
using ptx::mma_bf16;
using ptx::pack_bf16;
using ptx::smem_u32;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// ---- geometry -------------------------------------------------------------------------------------

// Compressed blocks visible from query t: i·stride + block − 1 <= t, i < n_cmp.
__host__ __device__ __forceinline__ int64_t visible_cmp(int64_t t, int64_t n_cmp, int64_t block,
                                                        int64_t stride) {
  if (t < block - 1) return 0;
  const int64_t v = (t - block + 1) / stride + 1;
  return v < n_cmp ? v : n_cmp;
}

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Which keys a query token sees, for the group-row attention kernels (nsa_cmp.cu). Key i stands for the
// tokens [i·stride, i·stride + span) and is visible from token t once it ends, i·stride + span − 1 <= t, and,
// with window > 0, while it starts inside the window, t − i·stride < window. Compressed keys: (d, l, 0); raw
// keys under a causal or sliding-window mask: (1, 1, w).
struct KeyVisibility {
  int64_t stride = 1, span = 1, window = 0, keys = 0;
  // Visible keys of token t: [lo(t), hi(t)).
  __host__ __device__ __forceinline__ int64_t hi(int64_t t) const {
    return visible_cmp(t, keys, span, stride);
  }
  __host__ __device__ __forceinline__ int64_t lo(int64_t t) const {
    if (window <= 0 || t < window) return 0;
    const int64_t v = (t - window) / stride + 1;
    return v < keys ? v : keys;
  }
  // Tokens that see key i: [from(i), to(i)].
  __host__ __device__ __forceinline__ int64_t from(int64_t i) const { return i * stride + span - 1; }
  __host__ __device__ __forceinline__ int64_t to(int64_t i) const {
    return window > 0 ? i * stride + window - 1 : INT64_MAX;
  }
};
__host__ __device__ __forceinline__ KeyVisibility compressed_visibility(const NsaGeometry& g, int64_t n_cmp) {
  return {g.cmp_stride, g.cmp_block, 0, n_cmp};
}

// Tokens shared by compressed block i ([i·d, i·d + l)) and selection block j ([j·l', (j+1)·l')), in units of
// d (the multiplicity of eq. 9's double sum); 0 when they do not overlap.
__host__ __device__ __forceinline__ int64_t overlap_weight(int64_t i, int64_t j, const NsaGeometry& g) {
  const int64_t a0 = i * g.cmp_stride, a1 = a0 + g.cmp_block;
  const int64_t b0 = j * g.slc_block, b1 = b0 + g.slc_block;
  const int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
  return hi > lo ? (hi - lo) / g.cmp_stride : 0;
}

// Compressed blocks overlapping selection block j: [first, last] (may be empty: first > last).
__host__ __device__ __forceinline__ int64_t first_cmp_of(int64_t j, const NsaGeometry& g) {
  const int64_t x = j * g.slc_block - g.cmp_block + 1;  // i·d > j·l' − l
  return x <= 0 ? 0 : ceil_div(x, g.cmp_stride);
}
__host__ __device__ __forceinline__ int64_t last_cmp_of(int64_t j, const NsaGeometry& g) {
  return ((j + 1) * g.slc_block - 1) / g.cmp_stride;  // i·d < (j+1)·l'
}

// Number of forced blocks of a query with `visible` selection blocks: the first init_blocks and the last
// local_blocks, counted once.
__host__ __device__ __forceinline__ int64_t forced_count(int64_t visible, const NsaGeometry& g) {
  const int64_t a = g.init_blocks < visible ? g.init_blocks : visible;
  const int64_t b = visible - g.local_blocks > 0 ? visible - g.local_blocks : 0;
  const int64_t both = a - b > 0 ? a - b : 0;
  return a + (visible - b) - both;
}
__host__ __device__ __forceinline__ bool is_forced(int64_t j, int64_t visible, const NsaGeometry& g) {
  return j < g.init_blocks || j >= visible - g.local_blocks;
}

// ---- loads and tensor-core fragments --------------------------------------------------------------

// 16 bytes global → shared, asynchronous; zero-filled (and `src` not read) when !valid.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  ptx::cp_async_16(smem_u32(dst), src, valid);
}
// 4 bytes global → shared, asynchronous; zero-filled when !valid.
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
  ptx::cp_async_4(smem_u32(dst), src, valid);
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) { ptx::ldmatrix_x4(r, smem_u32(p)); }
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
  ptx::ldmatrix_x4_trans(r, smem_u32(p));
}

// Address of this lane's row for an ldmatrix.x4 reading the 16×16 A block at (row0, col0) of a row-major
// tile with leading dimension ld (elements).
__device__ __forceinline__ const bf16_t* a_addr(const bf16_t* tile, int ld, int row0, int col0, int lane) {
  return tile + (row0 + (lane & 15)) * ld + col0 + (lane >> 4) * 8;
}
// B operands of two adjacent n-tiles (n0, n0 + 8) for one k-step k0, from a tile stored [n][k]
// (e.g. K [key][dim] for S = Q·Kᵀ): r0, r1 = b0, b1 of n-tile n0; r2, r3 = those of n0 + 8. Non-transposed.
__device__ __forceinline__ const bf16_t* bn_addr(const bf16_t* tile, int ld, int n0, int k0, int lane) {
  return tile + (n0 + (lane & 7) + ((lane >> 4) << 3)) * ld + k0 + ((lane >> 3) & 1) * 8;
}
// The same from a tile stored [k][n] (e.g. V [key][dim] for O = P·V): transposed ldmatrix.
__device__ __forceinline__ const bf16_t* bk_addr(const bf16_t* tile, int ld, int k0, int n0, int lane) {
  return tile + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + n0 + (lane >> 4) * 8;
}

// Sum / max over the 4 lanes of a quad (the lanes holding one accumulator row).
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

// 2^x with one MUFU instruction: ex2.approx.ftz. exp2f compiles to ex2.approx without ftz, which wraps the
// MUFU in a range test and two multiplies to produce subnormal results; the softmax kernels are bound by
// instruction issue, and a probability below 2^-126 changes no sum, product or selection at f32 precision.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// One online-softmax step of a warp's two accumulator rows (a: fragment row r, b: row r + 8) over NT
// n-tiles of scores already in log2 units, given the rows' maxima over this tile's scores (before the quad
// reduction): updates the running max m and sum l, replaces s by exp2(s − new max), and returns the factors
// (a, b) the output accumulators must be rescaled by. A row that has seen only −inf keeps max −inf and
// rescales by 1 (exp2(−inf − 0) = 0 terms, no NaN).
template <int NT>
__device__ __forceinline__ float2 online_softmax_step(float (&s)[NT][4], float mx_a, float mx_b, float& m_a,
                                                      float& m_b, float& l_a, float& l_b) {
  const float mn_a = fmaxf(m_a, quad_max(mx_a)), mn_b = fmaxf(m_b, quad_max(mx_b));
  const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
  const float corr_a = fast_exp2(m_a - base_a), corr_b = fast_exp2(m_b - base_b);
  m_a = mn_a;
  m_b = mn_b;
  float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    s[nt][0] = fast_exp2(s[nt][0] - base_a);
    s[nt][1] = fast_exp2(s[nt][1] - base_a);
    s[nt][2] = fast_exp2(s[nt][2] - base_b);
    s[nt][3] = fast_exp2(s[nt][3] - base_b);
    sum_a += s[nt][0] + s[nt][1];
    sum_b += s[nt][2] + s[nt][3];
  }
  l_a = l_a * corr_a + sum_a;
  l_b = l_b * corr_b + sum_b;
  return make_float2(corr_a, corr_b);
}

// Rescales the output accumulators of the warp's two rows (elements 4i, 4i + 1: row a; 4i + 2, 4i + 3: row b,
// the mma.sync C layout wgmma shares) by the online-softmax factors. Skipped when no row of the warp changed
// its maximum (every factor is then exactly 2^0 = 1), which is most tiles after the first few.
template <int N>
__device__ __forceinline__ void rescale_rows(float (&acc)[N], float2 corr) {
  if (!__any_sync(0xffffffffu, corr.x != 1.f || corr.y != 1.f)) return;
#pragma unroll
  for (int i = 0; i < N / 4; ++i) {
    acc[4 * i] *= corr.x;
    acc[4 * i + 1] *= corr.x;
    acc[4 * i + 2] *= corr.y;
    acc[4 * i + 3] *= corr.y;
  }
}

// Copies `rows` rows of `dim` bf16 (dim % 8 == 0) into a tile with leading dimension ld, one 16-byte chunk
// per thread step; row_ptr(r) gives the global row or nullptr (zero-filled).
template <class RowPtr>
__device__ __forceinline__ void load_rows_async(bf16_t* tile, int ld, int rows, int dim, const bf16_t* any,
                                                RowPtr&& row_ptr, int tid, int threads) {
  const int chunks = dim / 8;
  for (int c = tid; c < rows * chunks; c += threads) {
    const int r = c / chunks, col = (c % chunks) * 8;
    const bf16_t* src = row_ptr(r);
    cp_async16(tile + r * ld + col, src ? src + col : any, src != nullptr);
  }
}

// ---- workspace --------------------------------------------------------------------------------------

// Carves aligned pieces out of one workspace; with base == nullptr it only measures.
struct Carver {
  char* base;
  size_t used = 0;
  template <class T>
  T* take(size_t count) {
    used = (used + 255) / 256 * 256;
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += count * sizeof(T);
    return p;
  }
};

// The tensor-core kernels move rows in 16-byte pieces.
inline bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

inline bool tensor_core_dims(int64_t dk, int64_t dv) {
  return (dk == 64 && dv == 64) || (dk == 128 && dv == 128) || (dk == 192 && dv == 128);
}

// Calls f.template operator()<DK, DV>() for a tensor-core head-dim pair.
template <class F>
void dispatch_dims(int64_t dk, int64_t dv, F&& f) {
  if (dk == 64 && dv == 64) {
    f.template operator()<64, 64>();
  } else if (dk == 128 && dv == 128) {
    f.template operator()<128, 128>();
  } else {
    f.template operator()<192, 128>();
  }
}

// ---- Hopper warpgroup MMA (wgmma, sm_90a) ---------------------------------------------------------
//
// The instructions exist only in device passes for sm_90a (NSA_WGMMA_DEVICE); elsewhere these helpers compile
// to nothing, and kernels built on them guard their bodies with the same macro.
// A warpgroup (4 consecutive warps, 128 threads) multiplies a 64-row A by a 16-deep slab of B per
// instruction. Accumulator layout (m64nN, f32): warp w of the group holds rows 16w .. 16w + 15 and, per
// 8-column block j, d[4j + 0..1] = (row 16w + lane/4, columns 8j + 2·(lane%4) + 0..1), d[4j + 2..3] = the
// same 8 rows lower: the mma.sync C layout repeated along N. An A operand in registers has the mma.sync A
// layout per warp, so acc_to_a turns two accumulator blocks into one 16-deep k-step.
//
// Shared-memory operands use the 128-byte swizzle: a tile of `rows` rows × 64·H bf16 columns is stored as H
// column blocks of [rows][64] (128 bytes a row), with 16-byte chunk c of row r at chunk c ^ (r % 8); tiles
// start 1024-byte aligned and rows is a multiple of 8. The same tile serves as a K-major operand (its rows
// are M or N, its columns K: Q·Kᵀ) and as an MN-major one (its rows are K, its columns N: P·V).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define NSA_WGMMA_DEVICE 1
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define NSA_BULK_DEVICE 1  // bulk copies, mbarrier transaction counts, proxy fences (below)
#endif

// Byte offset of 16-byte chunk `chunk` (counted over the whole row) of row `row` in a swizzled tile.
__host__ __device__ __forceinline__ uint32_t sw128_offset(int row, int chunk, int rows) {
  return static_cast<uint32_t>((chunk >> 3) * rows * 128 + row * 128 + (((chunk & 7) ^ (row & 7)) << 4));
}

// Copies `rows` rows of D bf16 (D % 64 == 0) into a swizzled tile, asynchronously; row_ptr(r) gives the
// global row or nullptr (zero-filled).
template <int D, class RowPtr>
__device__ __forceinline__ void load_rows_sw128(unsigned char* tile, int rows, const bf16_t* any,
                                                RowPtr&& row_ptr, int tid, int threads) {
  static_assert(D % 64 == 0, "swizzled tiles hold whole 64-column blocks");
  constexpr int kChunks = D / 8;
  for (int c = tid; c < rows * kChunks; c += threads) {
    const int r = c / kChunks, ch = c % kChunks;
    const bf16_t* src = row_ptr(r);
    cp_async16(tile + sw128_offset(r, ch, rows), src ? src + ch * 8 : any, src != nullptr);
  }
}

// Copies ROWS consecutive rows (global row i0 + r at base + (i0 + r)·row_stride, valid while i0 + r < n) of D
// columns into a swizzled tile.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void copy_rows_sw128(unsigned char* tile, const bf16_t* base, int64_t row_stride,
                                                int64_t i0, int64_t n, const bf16_t* any, int tid) {
  constexpr int kChunks = D / 8, kStep = THREADS / kChunks;
  static_assert(kStep % 8 == 0 && ROWS % kStep == 0, "row step must keep the swizzle phase");
  const int ch = tid % kChunks, r0 = tid / kChunks;
  unsigned char* dst = tile + sw128_offset(r0, ch, ROWS);
  const bf16_t* src = base + (i0 + r0) * row_stride + ch * 8;
#pragma unroll
  for (int i = 0; i < ROWS / kStep; ++i) {
    const bool ok = i0 + r0 + i * kStep < n;
    cp_async16(dst + i * kStep * 128, ok ? src + i * kStep * row_stride : any, ok);
  }
}

// Shared-memory matrix descriptor: start address, leading and stride byte offsets (all >> 4), 128-byte
// swizzle.
__device__ __forceinline__ uint64_t wg_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (uint64_t{1} << 62);
}
// The descriptor of the same operand `bytes` further on (a multiple of 16): the start address sits in the low
// 14 bits as address / 16, and shared-memory addresses stay below 256 KB, so one add moves it. The k-step
// descriptors below are the tile's descriptor plus a constant, so an unrolled loop over k-steps builds the
// descriptor once (shifts, masks and ors) and adds.
__device__ __forceinline__ uint64_t desc_advance(uint64_t desc, uint32_t bytes) {
  return desc + (bytes >> 4);
}
// K-major operand, k-step kk (columns 16kk .. 16kk + 15) of a swizzled tile at shared address `tile`: 8-row
// groups 1024 bytes apart; inside a 64-column block a k-step is 32 bytes further (the swizzle applies to the
// final address).
__device__ __forceinline__ uint64_t desc_k_major(uint32_t tile, int rows, int kk) {
  return desc_advance(wg_desc(tile, 16, 1024), static_cast<uint32_t>((kk >> 2) * rows * 128 + (kk & 3) * 32));
}
// MN-major operand, k-step kk (tile rows 16kk .. 16kk + 15): 8-row groups 1024 bytes apart (stride offset),
// 64-column blocks rows·128 bytes apart (leading offset).
__device__ __forceinline__ uint64_t desc_mn_major(uint32_t tile, int rows, int kk) {
  return desc_advance(wg_desc(tile, static_cast<uint32_t>(rows * 128), 1024),
                      static_cast<uint32_t>(kk * 16 * 128));
}
// desc_k_major's k-step kk of a tile of `rows` rows, from the descriptor of its k-step 0.
__device__ __forceinline__ uint64_t desc_k_step(uint64_t desc0, int rows, int kk) {
  return desc_advance(desc0, static_cast<uint32_t>((kk >> 2) * rows * 128 + (kk & 3) * 32));
}

__device__ __forceinline__ void wg_fence() {
#ifdef NSA_WGMMA_DEVICE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#ifdef NSA_WGMMA_DEVICE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wg_wait() {
#ifdef NSA_WGMMA_DEVICE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Keeps the compiler from moving accesses of wgmma registers across the fence / wait around them.
template <int N>
__device__ __forceinline__ void wg_hold(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// Ordinary shared-memory writes (cp.async included) that wgmma reads next: each writer fences, then a
// barrier. Also orders a thread's shared-memory reads before a bulk copy overwrites them.
__device__ __forceinline__ void fence_proxy_async() {
#ifdef NSA_BULK_DEVICE
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// ---- Hopper bulk copies (cp.async.bulk, sm_90) with mbarrier completion -----------------------------
//
// A bulk copy moves one contiguous global range (a multiple of 16 bytes) into shared memory as a single
// instruction and reports its bytes to an mbarrier; the waiting side polls the barrier's phase. One
// instruction per 256-byte row replaces the 16 per-thread cp.async of the same row. Compiled only for
// sm_90 and later (NSA_BULK_DEVICE); kernels keep a cp.async path for the rest.
__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
#ifdef NSA_BULK_DEVICE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
#endif
}
// Makes initialised barriers visible to the async proxy (before the block barrier that publishes them).
__device__ __forceinline__ void mbar_init_fence() {
#ifdef NSA_BULK_DEVICE
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
// One arrival that also announces `bytes` of copies to come in this phase.
__device__ __forceinline__ void mbar_arrive_expect(uint64_t* bar, uint32_t bytes) {
#ifdef NSA_BULK_DEVICE
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
#endif
}
// One plain arrival (release: the caller's earlier shared-memory accesses, and those its warp ordered before
// it with __syncwarp, happen before the phase completes for any waiter).
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
#ifdef NSA_BULK_DEVICE
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
#endif
}
// Waits until the phase with this parity has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#ifdef NSA_BULK_DEVICE
  asm volatile(
      "{\n.reg .pred done;\nwait_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
#endif
}
// Global → shared, `bytes` (a multiple of 16, both addresses 16-byte aligned), completing on `bar`.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#ifdef NSA_BULK_DEVICE
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
          smem_u32(dst)),
      "l"(src), "r"(bytes), "r"(smem_u32(bar))
      : "memory");
#endif
}
#define NSA_WG_ACC8(d, i)                                                                     \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
      "+f"(d[i + 6]), "+f"(d[i + 7])
#define NSA_WG_ACC32(d) NSA_WG_ACC8(d, 0), NSA_WG_ACC8(d, 8), NSA_WG_ACC8(d, 16), NSA_WG_ACC8(d, 24)

// d (64×64) (+)= A·B, A and B in shared memory, both K-major; accumulate = 0 overwrites d.
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
#ifdef NSA_WGMMA_DEVICE
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
      "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
      "%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : NSA_WG_ACC32(d)
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}

// d (64×64) (+)= A·B, A in registers (4 per thread, the acc_to_a layout), B in shared memory (K-major when
// TRANS_B = 0, MN-major when 1).
template <int TRANS_B>
__device__ __forceinline__ void wgmma_rs_n64(float (&d)[32], const uint32_t (&a)[4], uint64_t b,
                                             int accumulate) {
#ifdef NSA_WGMMA_DEVICE
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
      "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
      "%31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : NSA_WG_ACC32(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TRANS_B));
#endif
}

// d (64×128) (+)= A·B, as wgmma_rs_n64.
template <int TRANS_B>
__device__ __forceinline__ void wgmma_rs_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t b,
                                              int accumulate) {
#ifdef NSA_WGMMA_DEVICE
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
      "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
      "%31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, "
      "%51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, "
      "%70;\n}\n"
      : NSA_WG_ACC32(d), NSA_WG_ACC8(d, 32), NSA_WG_ACC8(d, 40), NSA_WG_ACC8(d, 48), NSA_WG_ACC8(d, 56)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(TRANS_B));
#endif
}

// d (64×N, N = 64 or 128) (+)= A·B with A in registers.
template <int N, int TRANS_B>
__device__ __forceinline__ void wgmma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b,
                                         int accumulate) {
  if constexpr (N == 64) {
    wgmma_rs_n64<TRANS_B>(d, a, b, accumulate);
  } else {
    static_assert(N == 128, "wgmma_rs: N is 64 or 128");
    wgmma_rs_n128<TRANS_B>(d, a, b, accumulate);
  }
}

// d (64×N, N = 64 or 128) (+)= A·B, A and B in shared memory, both MN-major (A: contiguous along M, B: along
// N), e.g. A = a transposed tile written from accumulators.
template <int N>
__device__ __forceinline__ void wgmma_ss_mn(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate) {
#ifdef NSA_WGMMA_DEVICE
  if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
        "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
        "%31}, %32, %33, p, 1, 1, 1, 1;\n}\n"
        : NSA_WG_ACC32(d)
        : "l"(a), "l"(b), "r"(accumulate));
  } else {
    static_assert(N == 128, "wgmma_ss_mn: N is 64 or 128");
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, "
        "%11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, "
        "%31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, "
        "%51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 1, 1;\n}\n"
        : NSA_WG_ACC32(d), NSA_WG_ACC8(d, 32), NSA_WG_ACC8(d, 40), NSA_WG_ACC8(d, 48), NSA_WG_ACC8(d, 56)
        : "l"(a), "l"(b), "r"(accumulate));
  }
#endif
}

// acc_to_a on flat accumulators: k-step kk of A from accumulator blocks 2kk and 2kk + 1.
template <int N>
__device__ __forceinline__ void flat_acc_to_a(uint32_t (&a)[4], const float (&d)[N], int kk) {
  a[0] = pack_bf16(d[8 * kk + 0], d[8 * kk + 1]);
  a[1] = pack_bf16(d[8 * kk + 2], d[8 * kk + 3]);
  a[2] = pack_bf16(d[8 * kk + 4], d[8 * kk + 5]);
  a[3] = pack_bf16(d[8 * kk + 6], d[8 * kk + 7]);
}

// One stage of the wgmma dK/dV kernels (the compressed branch's and the selected branch's): this warpgroup's
// 64 keys (K and V tiles at ks, vs) against the stage's 64 query rows (Q and dO tiles at qst, dost, all
// swizzled). Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ go out as two commit groups, so Pᵀ = exp2(scale·Sᵀ − lse) (0 where
// seen(token, half) is false; half 0/1: the lane's key row lane/4 or the one 8 below) runs while dPᵀ is
// still on the tensor cores; then dSᵀ = Pᵀ ∘ (dPᵀ − delta), and dV += Pᵀ·dO, dK += dSᵀ·Q are issued as one
// committed group, not waited for. lse_st, delta_st, token_st: the stage's 64 rows. dsa receives dSᵀ as bf16
// A fragments (k-step kk: columns 16kk .. 16kk + 15), for a caller that also forms dQ.
template <int D, class Seen>
__device__ __forceinline__ void wg_dkdv_stage(float (&dka)[D / 2], float (&dva)[D / 2], float (&s)[32],
                                              float (&dp)[32], uint32_t (&dsa)[4][4], uint32_t ks,
                                              uint32_t vs, uint32_t qst, uint32_t dost, const float* lse_st,
                                              const float* delta_st, const int* token_st, float scale_log2,
                                              int lane, Seen&& seen) {
  constexpr int kRows = 64;
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    wgmma_ss_n64(s, desc_k_major(ks, 64, kk), desc_k_major(qst, kRows, kk), kk > 0);
  wg_commit();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    wgmma_ss_n64(dp, desc_k_major(vs, 64, kk), desc_k_major(dost, kRows, kk), kk > 0);
  wg_commit();

  wg_wait<1>();  // Sᵀ; dPᵀ still running
  wg_hold(s);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int col = j * 8 + (lane & 3) * 2;
    const float2 l2 = *reinterpret_cast<const float2*>(lse_st + col);
    const int2 t2 = *reinterpret_cast<const int2*>(token_st + col);
    const float lse_x = l2.x * kLog2e, lse_y = l2.y * kLog2e;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int t = e & 1 ? t2.y : t2.x;
      s[4 * j + e] =
          seen(t, e >> 1) ? fast_exp2(s[4 * j + e] * scale_log2 - (e & 1 ? lse_y : lse_x)) : 0.f;  // Pᵀ
    }
  }
  wg_wait<0>();
  wg_hold(dp);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float2 d2 = *reinterpret_cast<const float2*>(delta_st + j * 8 + (lane & 3) * 2);
#pragma unroll
    for (int e = 0; e < 4; ++e)
      dp[4 * j + e] = s[4 * j + e] * (dp[4 * j + e] - (e & 1 ? d2.y : d2.x));  // dSᵀ
  }
  uint32_t pa[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    flat_acc_to_a(pa[kk], s, kk);
    flat_acc_to_a(dsa[kk], dp, kk);
  }
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < kRows / 16; ++kk) wgmma_rs<D, 1>(dva, pa[kk], desc_mn_major(dost, kRows, kk), 1);
#pragma unroll
  for (int kk = 0; kk < kRows / 16; ++kk) wgmma_rs<D, 1>(dka, dsa[kk], desc_mn_major(qst, kRows, kk), 1);
  wg_commit();
}

}  // namespace nsa::kernels::nsa_impl
