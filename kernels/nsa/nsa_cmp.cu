// Compressed attention (paper eq. 8 over the keys of eq. 7), flash-style on tensor cores (bf16 in, f32
// accumulation), with the CUDA-core path for everything else.
//
// Rows of one program are the (token, head) pairs of one GQA group, enumerated R = t·G + h (the group's
// heads are adjacent in memory), so one compressed K/V tile in shared memory serves all G heads of several
// tokens; the block-causal mask is per row: key i is visible to token t iff i·d + l − 1 <= t.
//   forward  128 rows × 64-key tiles, 8 warps of 16 rows, online softmax, K/V double-buffered (cp.async);
//            the programs holding the latest tokens (most keys) are launched first. 128 rows (not 64) halve
//            the K/V tile traffic from L2, which bounded the 64-row version.
//   dQ       the same tiling; recomputes S and dP from lse and delta = rowsum(dO ∘ O).
//   dK/dV    one program per 64-key tile and chunk of query rows; Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ per stage of query
//            rows, dV += Pᵀ·dO, dK += dSᵀ·Q accumulated in registers. The chunks sit at fixed row positions
//            and the programs of one chunk run side by side, so L2 serves their shared Q/dO rows. A tile seen
//            by several chunks writes f32 partials that a second kernel adds in chunk order: deterministic.
// On Hopper (sm_90a, head dims 64 or 128) all three run on wgmma with operands straight from swizzled shared
// memory: the forward with three warpgroups (192 rows) sharing each K/V tile through an mbarrier ring (they
// drift apart instead of meeting every tile), one program per SM; dQ and
// dK/dV with one warpgroup per program and two programs per SM (Q, dO, P and dS from registers). Elsewhere
// (and for head dims 192/128) on mma.sync with 4 warps of 16 rows (dQ) or 16 keys (dK/dV). The backward
// kernels of both give the same bits: the products accumulate their 16-deep k-steps in the same order.
#include <algorithm>
#include <atomic>

#include "kernels/attention/group_attention.h"
#include "kernels/nsa/nsa_device.cuh"
#include "kernels/nsa/nsa_internal.h"

namespace nsa::kernels::nsa_impl {
namespace {

constexpr int kThreads = 128;   // 4 warps
constexpr int kRows = 64;       // query rows per dQ program
constexpr int kKeys = 64;       // compressed keys per tile
constexpr int kBwdRows = 32;    // query rows per product step of dK/dV
constexpr int kStageRows = 64;  // query rows per loaded stage of dK/dV (two product steps per barrier)
// Forward: 8 warps of 16 rows.
constexpr int kFwdThreads = 256;
constexpr int kFwdRows = 128;

// Rows of one group: r = t·G + h. T·G < 2^32, so the division runs in 32 bits.
struct GroupRows {
  int64_t seq, heads_q, group, b, g;
  __device__ __forceinline__ int64_t total() const { return seq * group; }
  __device__ __forceinline__ int64_t token(int64_t r) const {
    return static_cast<uint32_t>(r) / static_cast<uint32_t>(group);
  }
  // Element offset of row r of a [B, T, Hq, dim] tensor.
  __device__ __forceinline__ int64_t offset(int64_t r, int dim) const {
    const int64_t t = token(r);
    return ((b * seq + t) * heads_q + g * group + (r - t * group)) * dim;
  }
  // Offset in the [B, Hq, T] statistics (lse, delta).
  __device__ __forceinline__ int64_t stat(int64_t r) const {
    const int64_t t = token(r);
    return (b * heads_q + g * group + (r - t * group)) * seq + t;
  }
};

__device__ __forceinline__ GroupRows group_rows(const NsaSizes& sz, int64_t bg) {
  const int64_t group = sz.heads_q / sz.heads_kv;
  return {sz.seq, sz.heads_q, group, bg / sz.heads_kv, bg % sz.heads_kv};
}

// Forward epilogue of one accumulator row r (its half: 0 = fragment row lane/4, 1 = the row 8 below): O / l
// in bf16 and lse = m·ln 2 + ln l (m in log2 units), −inf for a row that saw no key. acc(j, e) is element e
// of the lane's accumulator block j (8 columns), in the mma.sync C layout that wgmma accumulators share.
template <int DV, class Acc>
__device__ __forceinline__ void store_forward_row(bf16_t* out, float* lse, const GroupRows& gr, int64_t rows,
                                                  int64_t r, float m, float l, int half, int lane,
                                                  Acc&& acc) {
  if (r >= rows) return;
  bf16_t* orow = out + gr.offset(r, DV);
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int j = 0; j < DV / 8; ++j)
    *reinterpret_cast<__nv_bfloat162*>(orow + j * 8 + (lane & 3) * 2) =
        __floats2bfloat162_rn(acc(j, 2 * half) * inv, acc(j, 2 * half + 1) * inv);
  if ((lane & 3) == 0) lse[gr.stat(r)] = l > 0.f ? (m + log2f(l)) * kLn2 : -INFINITY;
}

template <int DK, int DV>
struct FwdSmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr size_t kBytes = sizeof(bf16_t) * (kFwdRows * kLdK + 2 * kKeys * kLdK + 2 * kKeys * kLdV);
};

// Loads compressed key/value tile `kt` of (b, g) into the given buffers (rows past Nc zero-filled).
template <int DK, int DV, int THREADS = kThreads>
__device__ __forceinline__ void load_kv_tile(bf16_t* ks, bf16_t* vs, const bf16_t* k, const bf16_t* v,
                                             const bf16_t* any, int64_t kt, const NsaSizes& sz,
                                             const GroupRows& gr, int tid) {
  const int64_t i0 = kt * kKeys;
  auto row = [&](const bf16_t* base, int r, int dim) -> const bf16_t* {
    const int64_t i = i0 + r;
    return i < sz.keys ? base + ((gr.b * sz.keys + i) * sz.heads_kv + gr.g) * dim : nullptr;
  };
  load_rows_async(
      ks, DK + 8, kKeys, DK, any, [&](int r) { return row(k, r, DK); }, tid, THREADS);
  load_rows_async(
      vs, DV + 8, kKeys, DV, any, [&](int r) { return row(v, r, DV); }, tid, THREADS);
}

// Two programs per SM (16 warps) cap the registers at 128, which spills ~100 bytes for D = 128; one program
// per SM without spills measured 22.4 ms against 20.2 ms at 64k (H100, 2026-11-23).
template <int DK, int DV>
__global__ void __launch_bounds__(kFwdThreads, 2)
    cmp_forward_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                       const bf16_t* __restrict__ v, bf16_t* __restrict__ out, float* __restrict__ lse,
                       NsaSizes sz, NsaGeometry geo, float scale_log2) {
  using S = FwdSmem<DK, DV>;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);
  bf16_t* ks = qs + kFwdRows * S::kLdK;
  bf16_t* vs = ks + 2 * kKeys * S::kLdK;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const GroupRows gr = group_rows(sz, blockIdx.y);
  const int64_t rows = gr.total();
  const int64_t row0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * kFwdRows;  // latest tokens first
  load_rows_async(
      qs, S::kLdK, kFwdRows, DK, q,
      [&](int r) { return row0 + r < rows ? q + gr.offset(row0 + r, DK) : nullptr; }, tid, kFwdThreads);
  cp_async_commit();

  auto visible = [&](int64_t r) {
    return r < rows ? visible_cmp(gr.token(r), sz.keys, geo.cmp_block, geo.cmp_stride) : int64_t{0};
  };
  const int64_t vis_cta = visible(std::min(row0 + kFwdRows, rows) - 1);
  const int64_t n_kt = ceil_div(vis_cta, kKeys);
  if (n_kt > 0) load_kv_tile<DK, DV, kFwdThreads>(ks, vs, k, v, q, 0, sz, gr, tid);
  cp_async_commit();

  const int64_t ra = row0 + warp * 16 + (lane >> 2), rb = ra + 8;
  // Key counts in 32 bits (Nc < 2^31): fewer registers and instructions than 64-bit compares.
  const int vis_a = static_cast<int>(visible(ra)), vis_b = static_cast<int>(visible(rb));
  const int vis_warp = static_cast<int>(visible(std::min(row0 + warp * 16 + 15, rows - 1)));
  const int vis_warp_min = static_cast<int>(visible(row0 + warp * 16));  // rows ascend in t

  float o[DV / 8][4] = {};
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
  for (int64_t kt = 0; kt < n_kt; ++kt) {
    if (kt + 1 < n_kt) {
      const int st = (kt + 1) & 1;
      load_kv_tile<DK, DV, kFwdThreads>(ks + st * kKeys * S::kLdK, vs + st * kKeys * S::kLdV, k, v, q, kt + 1,
                                        sz, gr, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16_t* kst = ks + (kt & 1) * kKeys * S::kLdK;
    const bf16_t* vst = vs + (kt & 1) * kKeys * S::kLdV;
    const int i0 = static_cast<int>(kt) * kKeys;
    if (i0 < vis_warp) {
      float s[8][4] = {};
#pragma unroll
      for (int kk = 0; kk < DK / 16; ++kk) {
        uint32_t a[4];
        ldsm_x4(a, a_addr(qs, S::kLdK, warp * 16, kk * 16, lane));
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t bb[4];
          ldsm_x4(bb, bn_addr(kst, S::kLdK, np * 16, kk * 16, lane));
          mma_bf16(s[2 * np], a, bb[0], bb[1]);
          mma_bf16(s[2 * np + 1], a, bb[2], bb[3]);
        }
      }
      float mx_a = -INFINITY, mx_b = -INFINITY;
      if (i0 + kKeys <= vis_warp_min) {  // every row of the warp sees the whole tile: no mask
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[nt][e] *= scale_log2;
      } else {
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          const int key = i0 + nt * 8 + (lane & 3) * 2;
          s[nt][0] = key < vis_a ? s[nt][0] * scale_log2 : -INFINITY;
          s[nt][1] = key + 1 < vis_a ? s[nt][1] * scale_log2 : -INFINITY;
          s[nt][2] = key < vis_b ? s[nt][2] * scale_log2 : -INFINITY;
          s[nt][3] = key + 1 < vis_b ? s[nt][3] * scale_log2 : -INFINITY;
        }
      }
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        mx_a = fmaxf(mx_a, fmaxf(s[nt][0], s[nt][1]));
        mx_b = fmaxf(mx_b, fmaxf(s[nt][2], s[nt][3]));
      }
      const float2 corr = online_softmax_step(s, mx_a, mx_b, m_a, m_b, l_a, l_b);
      const float corr_a = corr.x, corr_b = corr.y;
#pragma unroll
      for (int nt = 0; nt < DV / 8; ++nt) {
        o[nt][0] *= corr_a;
        o[nt][1] *= corr_a;
        o[nt][2] *= corr_b;
        o[nt][3] *= corr_b;
      }
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t a[4];
        acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
        for (int np = 0; np < DV / 16; ++np) {
          uint32_t bb[4];
          ldsm_x4_t(bb, bk_addr(vst, S::kLdV, kk * 16, np * 16, lane));
          mma_bf16(o[2 * np], a, bb[0], bb[1]);
          mma_bf16(o[2 * np + 1], a, bb[2], bb[3]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  l_a = quad_sum(l_a);
  l_b = quad_sum(l_b);
  auto acc = [&](int nt, int e) { return o[nt][e]; };
  store_forward_row<DV>(out, lse, gr, rows, ra, m_a, l_a, 0, lane, acc);
  store_forward_row<DV>(out, lse, gr, rows, rb, m_b, l_b, 1, lane, acc);
}

template <int DK, int DV>
struct DqSmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr size_t kBytes = sizeof(bf16_t) * 3 * kRows * (kLdK + kLdV);
};

template <int DK, int DV>
__global__ void __launch_bounds__(kThreads, 1)
    cmp_dq_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                  const bf16_t* __restrict__ v, const float* __restrict__ lse,
                  const float* __restrict__ delta, bf16_t* __restrict__ dq, NsaSizes sz, NsaGeometry geo,
                  float scale_log2, float scale) {
  using S = DqSmem<DK, DV>;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);
  bf16_t* dos = qs + kRows * S::kLdK;
  bf16_t* ks = dos + kRows * S::kLdV;
  bf16_t* vs = ks + 2 * kKeys * S::kLdK;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const GroupRows gr = group_rows(sz, blockIdx.y);
  const int64_t rows = gr.total();
  const int64_t row0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * kRows;
  load_rows_async(
      qs, S::kLdK, kRows, DK, q,
      [&](int r) { return row0 + r < rows ? q + gr.offset(row0 + r, DK) : nullptr; }, tid, kThreads);
  load_rows_async(
      dos, S::kLdV, kRows, DV, q,
      [&](int r) { return row0 + r < rows ? dout + gr.offset(row0 + r, DV) : nullptr; }, tid, kThreads);
  cp_async_commit();

  auto visible = [&](int64_t r) {
    return r < rows ? visible_cmp(gr.token(r), sz.keys, geo.cmp_block, geo.cmp_stride) : int64_t{0};
  };
  const int64_t n_kt = ceil_div(visible(std::min(row0 + kRows, rows) - 1), kKeys);
  if (n_kt > 0) load_kv_tile<DK, DV>(ks, vs, k, v, q, 0, sz, gr, tid);
  cp_async_commit();

  const int64_t ra = row0 + warp * 16 + (lane >> 2), rb = ra + 8;
  const int64_t vis_a = visible(ra), vis_b = visible(rb);
  const int64_t vis_warp = visible(std::min(row0 + warp * 16 + 15, rows - 1));
  const float lse_a = vis_a > 0 ? lse[gr.stat(ra)] * kLog2e : 0.f;
  const float lse_b = vis_b > 0 ? lse[gr.stat(rb)] * kLog2e : 0.f;
  const float dl_a = vis_a > 0 ? delta[gr.stat(ra)] : 0.f, dl_b = vis_b > 0 ? delta[gr.stat(rb)] : 0.f;

  float acc[DK / 8][4] = {};
  for (int64_t kt = 0; kt < n_kt; ++kt) {
    if (kt + 1 < n_kt) {
      const int st = (kt + 1) & 1;
      load_kv_tile<DK, DV>(ks + st * kKeys * S::kLdK, vs + st * kKeys * S::kLdV, k, v, q, kt + 1, sz, gr,
                           tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16_t* kst = ks + (kt & 1) * kKeys * S::kLdK;
    const bf16_t* vst = vs + (kt & 1) * kKeys * S::kLdV;
    const int64_t i0 = kt * kKeys;
    if (i0 < vis_warp) {
      float s[8][4] = {}, dp[8][4] = {};
#pragma unroll
      for (int kk = 0; kk < DK / 16; ++kk) {
        uint32_t a[4];
        ldsm_x4(a, a_addr(qs, S::kLdK, warp * 16, kk * 16, lane));
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t bb[4];
          ldsm_x4(bb, bn_addr(kst, S::kLdK, np * 16, kk * 16, lane));
          mma_bf16(s[2 * np], a, bb[0], bb[1]);
          mma_bf16(s[2 * np + 1], a, bb[2], bb[3]);
        }
      }
#pragma unroll
      for (int kk = 0; kk < DV / 16; ++kk) {
        uint32_t a[4];
        ldsm_x4(a, a_addr(dos, S::kLdV, warp * 16, kk * 16, lane));
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t bb[4];
          ldsm_x4(bb, bn_addr(vst, S::kLdV, np * 16, kk * 16, lane));
          mma_bf16(dp[2 * np], a, bb[0], bb[1]);
          mma_bf16(dp[2 * np + 1], a, bb[2], bb[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t key = i0 + nt * 8 + (lane & 3) * 2 + (e & 1);
          const bool vis = key < (e < 2 ? vis_a : vis_b);
          const float p = vis ? fast_exp2(s[nt][e] * scale_log2 - (e < 2 ? lse_a : lse_b)) : 0.f;
          s[nt][e] = p * (dp[nt][e] - (e < 2 ? dl_a : dl_b));  // dS
        }
      }
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t a[4];
        acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
        for (int np = 0; np < DK / 16; ++np) {
          uint32_t bb[4];
          ldsm_x4_t(bb, bk_addr(kst, S::kLdK, kk * 16, np * 16, lane));
          mma_bf16(acc[2 * np], a, bb[0], bb[1]);
          mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  auto finish = [&](int64_t r, int half) {
    if (r >= rows) return;
    bf16_t* row = dq + gr.offset(r, DK);
#pragma unroll
    for (int nt = 0; nt < DK / 8; ++nt)
      *reinterpret_cast<__nv_bfloat162*>(row + nt * 8 + (lane & 3) * 2) =
          __floats2bfloat162_rn(acc[nt][2 * half] * scale, acc[nt][2 * half + 1] * scale);
  };
  finish(ra, 0);
  finish(rb, 1);
}

// ---- dK/dV -------------------------------------------------------------------------------------------

// Work of the dK/dV kernels. Key tile kt (tile_keys keys) is seen by the rows [first_row(kt), end_row(kt)).
// The rows are cut into chunks at fixed positions, chunk c = [c·chunk_rows, (c+1)·chunk_rows), and tile kt
// takes part in chunks first_chunk(kt) .. last_chunk(kt): one program each. The grid runs the key tile
// fastest, so the programs of one chunk run side by side and stream the same Q/dO rows, which L2 then serves
// to all but the first. A tile of several chunks writes f32 partials (slot) that a second kernel adds in
// chunk order.
struct KeyTilePlan {
  int64_t tile_keys, chunk_rows, n_chunks, n_kt, slots_per_bg;
  __host__ __device__ int64_t first_row(int64_t kt, const NsaSizes& sz, const KeyVisibility& vis) const {
    return vis.from(kt * tile_keys) * (sz.heads_q / sz.heads_kv);
  }
  __host__ __device__ int64_t end_row(int64_t kt, const NsaSizes& sz, const KeyVisibility& vis) const {
    const int64_t group = sz.heads_q / sz.heads_kv, total = sz.seq * group;
    const int64_t last_key = ((kt + 1) * tile_keys < sz.keys ? (kt + 1) * tile_keys : sz.keys) - 1;
    const int64_t last_token = vis.to(last_key);
    return last_token < sz.seq - 1 ? (last_token + 1) * group : total;
  }
  __host__ __device__ int64_t first_chunk(int64_t kt, const NsaSizes& sz, const KeyVisibility& vis) const {
    return first_row(kt, sz, vis) / chunk_rows;
  }
  __host__ __device__ int64_t last_chunk(int64_t kt, const NsaSizes& sz, const KeyVisibility& vis) const {
    return (end_row(kt, sz, vis) - 1) / chunk_rows;
  }
  __host__ __device__ int64_t chunks(int64_t kt, const NsaSizes& sz, const KeyVisibility& vis) const {
    return last_chunk(kt, sz, vis) - first_chunk(kt, sz, vis) + 1;
  }
  // Partial slot of (bg, kt, chunk): the tiles' chunks one after another.
  __host__ __device__ int64_t slot(int64_t bg, int64_t kt, int64_t chunk, const NsaSizes& sz,
                                   const KeyVisibility& vis) const {
    int64_t before = 0;
    for (int64_t k = 0; k < kt; ++k) before += chunks(k, sz, vis);
    return bg * slots_per_bg + before + chunk - first_chunk(kt, sz, vis);
  }
  // Whether program (kt, chunk) has rows.
  __host__ __device__ bool takes_part(int64_t kt, int64_t chunk, const NsaSizes& sz,
                                      const KeyVisibility& vis) const {
    return chunk >= first_chunk(kt, sz, vis) && chunk <= last_chunk(kt, sz, vis);
  }
  // Rows of program (kt, chunk), [begin, end).
  __host__ __device__ void rows(int64_t kt, int64_t chunk, const NsaSizes& sz, const KeyVisibility& vis,
                                int64_t& begin, int64_t& end) const {
    const int64_t fr = first_row(kt, sz, vis), er = end_row(kt, sz, vis);
    begin = chunk * chunk_rows > fr ? chunk * chunk_rows : fr;
    end = (chunk + 1) * chunk_rows < er ? (chunk + 1) * chunk_rows : er;
  }
};

// Writes the dK/dV rows of one key (the accumulator half `half` of this lane): straight to dk/dv as bf16 when
// the tile has one chunk, else as f32 partials [tile_keys][DK + DV] of the program's slot (part points at the
// row of the tile's first key).
template <int DK, int DV, class KAcc, class VAcc>
__device__ __forceinline__ void store_dkdv(int64_t key, int64_t key0, bool direct, float* part, bf16_t* dk,
                                           bf16_t* dv, const NsaSizes& sz, const GroupRows& gr, float scale,
                                           int lane, KAcc&& dk_at, VAcc&& dv_at) {
  if (key >= sz.keys) return;
  const int col = (lane & 3) * 2;
  if (direct) {
    bf16_t* krow = dk + ((gr.b * sz.keys + key) * sz.heads_kv + gr.g) * DK;
    bf16_t* vrow = dv + ((gr.b * sz.keys + key) * sz.heads_kv + gr.g) * DV;
#pragma unroll
    for (int nt = 0; nt < DK / 8; ++nt)
      *reinterpret_cast<__nv_bfloat162*>(krow + nt * 8 + col) =
          __floats2bfloat162_rn(dk_at(nt, 0) * scale, dk_at(nt, 1) * scale);
#pragma unroll
    for (int nt = 0; nt < DV / 8; ++nt)
      *reinterpret_cast<__nv_bfloat162*>(vrow + nt * 8 + col) =
          __floats2bfloat162_rn(dv_at(nt, 0), dv_at(nt, 1));
  } else {
    float* row = part + (key - key0) * (DK + DV);
#pragma unroll
    for (int nt = 0; nt < DK / 8; ++nt)
      *reinterpret_cast<float2*>(row + nt * 8 + col) =
          make_float2(dk_at(nt, 0) * scale, dk_at(nt, 1) * scale);
#pragma unroll
    for (int nt = 0; nt < DV / 8; ++nt)
      *reinterpret_cast<float2*>(row + DK + nt * 8 + col) = make_float2(dv_at(nt, 0), dv_at(nt, 1));
  }
}

template <int DK, int DV>
struct DkvSmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr size_t kTiles = sizeof(bf16_t) * (kKeys * (kLdK + kLdV) + 2 * kStageRows * (kLdK + kLdV));
  static constexpr size_t kBytes = kTiles + 2 * kStageRows * (2 * sizeof(float) + sizeof(int));
};

// mma.sync version (any tensor-core head dims; the only one before Hopper).
template <int DK, int DV>
__global__ void __launch_bounds__(kThreads, 2)
    cmp_dkdv_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q,
                    const bf16_t* __restrict__ k, const bf16_t* __restrict__ v, const float* __restrict__ lse,
                    const float* __restrict__ delta, bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                    float* __restrict__ partial, NsaSizes sz, NsaGeometry geo, float scale_log2, float scale,
                    KeyTilePlan plan) {
  using S = DkvSmem<DK, DV>;
  const int64_t kt = blockIdx.x, chunk = blockIdx.y, bg = blockIdx.z;
  const KeyVisibility vis = compressed_visibility(geo, sz.keys);
  if (!plan.takes_part(kt, chunk, sz, vis)) return;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* ks = reinterpret_cast<bf16_t*>(smem);
  bf16_t* vs = ks + kKeys * S::kLdK;
  bf16_t* qs = vs + kKeys * S::kLdV;  // [2][kStageRows][kLdK]
  bf16_t* dos = qs + 2 * kStageRows * S::kLdK;
  float* st_lse = reinterpret_cast<float*>(smem + S::kTiles);  // [2][kStageRows], log2 units
  float* st_delta = st_lse + 2 * kStageRows;
  int* st_token = reinterpret_cast<int*>(st_delta + 2 * kStageRows);  // −1: no row (T < 2^31)

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const GroupRows gr = group_rows(sz, bg);
  int64_t r_begin, r_end;
  plan.rows(kt, chunk, sz, vis, r_begin, r_end);
  const int64_t n_steps = ceil_div(r_end - r_begin, kStageRows);

  load_kv_tile<DK, DV>(ks, vs, k, v, q, kt, sz, gr, tid);
  cp_async_commit();
  auto load_rows = [&](int64_t step) {
    const int st = step & 1;
    const int64_t r0 = r_begin + step * kStageRows;
    auto valid = [&](int r) { return r0 + r < r_end; };
    load_rows_async(
        qs + st * kStageRows * S::kLdK, S::kLdK, kStageRows, DK, q,
        [&](int r) { return valid(r) ? q + gr.offset(r0 + r, DK) : nullptr; }, tid, kThreads);
    load_rows_async(
        dos + st * kStageRows * S::kLdV, S::kLdV, kStageRows, DV, q,
        [&](int r) { return valid(r) ? dout + gr.offset(r0 + r, DV) : nullptr; }, tid, kThreads);
    if (tid < kStageRows) {
      const bool ok = valid(tid);
      st_lse[st * kStageRows + tid] = ok ? lse[gr.stat(r0 + tid)] * kLog2e : 0.f;
      st_delta[st * kStageRows + tid] = ok ? delta[gr.stat(r0 + tid)] : 0.f;
      st_token[st * kStageRows + tid] = ok ? static_cast<int>(gr.token(r0 + tid)) : -1;
    }
  };
  load_rows(0);
  cp_async_commit();

  // Keys and tokens fit in 32 bits (T < 2^31).
  const int n_cmp = static_cast<int>(sz.keys), stride = static_cast<int>(geo.cmp_stride);
  const int block_end = static_cast<int>(geo.cmp_block) - 1;
  const int key_a = static_cast<int>(kt * kKeys) + warp * 16 + (lane >> 2), key_b = key_a + 8;
  const int warp_key0 = static_cast<int>(kt * kKeys) + warp * 16;
  const bool warp_active = warp_key0 < n_cmp;
  const int64_t warp_first_token = static_cast<int64_t>(warp_key0) * stride + block_end;

  float dka[DK / 8][4] = {}, dva[DV / 8][4] = {};
  for (int64_t step = 0; step < n_steps; ++step) {
    if (step + 1 < n_steps) load_rows(step + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
#pragma unroll 1
    for (int sub = 0; sub < kStageRows / kBwdRows; ++sub) {
      const int row0 = (step & 1) * kStageRows + sub * kBwdRows;  // in the stage buffers
      const int64_t first = r_begin + step * kStageRows + sub * kBwdRows;
      if (first >= r_end) break;
      const bf16_t* qst = qs + row0 * S::kLdK;
      const bf16_t* dost = dos + row0 * S::kLdV;
      const int64_t last_token = gr.token(std::min(first + kBwdRows, r_end) - 1);
      if (warp_active && last_token >= warp_first_token) {
        float s[4][4] = {}, dp[4][4] = {};
#pragma unroll
        for (int kk = 0; kk < DK / 16; ++kk) {
          uint32_t a[4];
          ldsm_x4(a, a_addr(ks, S::kLdK, warp * 16, kk * 16, lane));
#pragma unroll
          for (int np = 0; np < kBwdRows / 16; ++np) {
            uint32_t bb[4];
            ldsm_x4(bb, bn_addr(qst, S::kLdK, np * 16, kk * 16, lane));
            mma_bf16(s[2 * np], a, bb[0], bb[1]);
            mma_bf16(s[2 * np + 1], a, bb[2], bb[3]);
          }
        }
#pragma unroll
        for (int kk = 0; kk < DV / 16; ++kk) {
          uint32_t a[4];
          ldsm_x4(a, a_addr(vs, S::kLdV, warp * 16, kk * 16, lane));
#pragma unroll
          for (int np = 0; np < kBwdRows / 16; ++np) {
            uint32_t bb[4];
            ldsm_x4(bb, bn_addr(dost, S::kLdV, np * 16, kk * 16, lane));
            mma_bf16(dp[2 * np], a, bb[0], bb[1]);
            mma_bf16(dp[2 * np + 1], a, bb[2], bb[3]);
          }
        }
#pragma unroll
        for (int nt = 0; nt < kBwdRows / 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int col = row0 + nt * 8 + (lane & 3) * 2 + (e & 1);
            const int key = e < 2 ? key_a : key_b, token = st_token[col];
            const bool vis = token >= 0 && key < n_cmp && key * stride + block_end <= token;
            const float p = vis ? fast_exp2(s[nt][e] * scale_log2 - st_lse[col]) : 0.f;
            s[nt][e] = p;
            dp[nt][e] = p * (dp[nt][e] - st_delta[col]);  // dSᵀ
          }
        }
#pragma unroll
        for (int kk = 0; kk < kBwdRows / 16; ++kk) {
          uint32_t a[4];
          acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
          for (int np = 0; np < DV / 16; ++np) {
            uint32_t bb[4];
            ldsm_x4_t(bb, bk_addr(dost, S::kLdV, kk * 16, np * 16, lane));
            mma_bf16(dva[2 * np], a, bb[0], bb[1]);
            mma_bf16(dva[2 * np + 1], a, bb[2], bb[3]);
          }
          acc_to_a(a, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
          for (int np = 0; np < DK / 16; ++np) {
            uint32_t bb[4];
            ldsm_x4_t(bb, bk_addr(qst, S::kLdK, kk * 16, np * 16, lane));
            mma_bf16(dka[2 * np], a, bb[0], bb[1]);
            mma_bf16(dka[2 * np + 1], a, bb[2], bb[3]);
          }
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  const bool direct = plan.chunks(kt, sz, vis) == 1;
  float* part = direct ? nullptr : partial + plan.slot(bg, kt, chunk, sz, vis) * kKeys * (DK + DV);
  for (int half = 0; half < 2; ++half)
    store_dkdv<DK, DV>(
        half ? key_b : key_a, kt * kKeys, direct, part, dk, dv, sz, gr, scale, lane,
        [&](int nt, int i) { return dka[nt][2 * half + i]; },
        [&](int nt, int i) { return dva[nt][2 * half + i]; });
}

// ---- Hopper (wgmma) versions of dQ and dK/dV -----------------------------------------------------------
//
// WGS warpgroups per program (warpgroup w takes query rows 64w .. 64w + 63 in dQ, keys 64w .. 64w + 63 in
// dK/dV) share the streamed tiles, which sit in a ring of STAGES shared-memory buffers with the 128-byte
// swizzle (nsa_device.cuh) and are read by wgmma straight from there; Q and dO (dQ) and P and dS are fed from
// registers. Loads carry no division in the inner loop: each thread copies one 16-byte column chunk of every
// (threads·8/D)-th row, so its shared-memory destination advances by a constant. Per tile the two products
// that read the same stage are committed as two wgmma groups, so that P's exponentials run while dP is still
// being multiplied.
constexpr int kWgRows = 64;  // query rows per stage (dK/dV) and per warpgroup (dQ)

[[maybe_unused]] __device__ __forceinline__ unsigned char* align_1024(unsigned char* p) {
  return p + ((1024u - (smem_u32(p) & 1023u)) & 1023u);
}

// acc (64 × D) += X·B for the warpgroup and waits for it: X the 64 × 64 accumulator x rounded to bf16 (P or
// dS, the A operand from registers), B a swizzled tile of 64 keys × D read MN-major (V or K).
template <int D>
__device__ __forceinline__ void wg_accumulate_tile(float (&acc)[D / 2], const float (&x)[32], uint32_t tile) {
  uint32_t xa[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) flat_acc_to_a(xa[kk], x, kk);
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < kKeys / 16; ++kk) wgmma_rs<D, 1>(acc, xa[kk], desc_mn_major(tile, kKeys, kk), 1);
  wg_commit();
  wg_wait<0>();
  wg_hold(acc);
}

// Compressed key tile kt of (b, g) (keys kt·64 .. kt·64 + 63, zero past Nc) into a stage: K's swizzled tile,
// then V's `v_offset` bytes further.
template <int D, int THREADS>
__device__ __forceinline__ void copy_kv_tile_sw128(unsigned char* stage, uint32_t v_offset, const bf16_t* k,
                                                   const bf16_t* v, const bf16_t* any, int64_t kt,
                                                   const NsaSizes& sz, const GroupRows& gr, int tid) {
  const int64_t key_stride = sz.heads_kv * D, base = (gr.b * sz.keys * sz.heads_kv + gr.g) * D;
  copy_rows_sw128<D, kKeys, THREADS>(stage, k + base, key_stride, kt * kKeys, sz.keys, any, tid);
  copy_rows_sw128<D, kKeys, THREADS>(stage + v_offset, v + base, key_stride, kt * kKeys, sz.keys, any, tid);
}

// Query rows r0 .. r0 + kWgRows − 1 (valid below r_end) of Q and dO into a stage's swizzled tiles.
template <int D, int THREADS>
__device__ __forceinline__ void copy_query_rows(unsigned char* q_tile, unsigned char* do_tile,
                                                const bf16_t* q, const bf16_t* dout, const GroupRows& gr,
                                                int64_t r0, int64_t r_end, int tid) {
  constexpr int kChunks = D / 8, kStep = THREADS / kChunks;
  static_assert(kStep % 8 == 0 && kWgRows % kStep == 0, "row step must keep the swizzle phase");
  const int ch = tid % kChunks, rr = tid / kChunks;
  const uint32_t dst = sw128_offset(rr, ch, kWgRows);
#pragma unroll
  for (int i = 0; i < kWgRows / kStep; ++i) {
    const int64_t r = r0 + rr + i * kStep;
    const bool ok = r < r_end;
    const int64_t off = ok ? gr.offset(r, D) + ch * 8 : 0;
    cp_async16(q_tile + dst + i * kStep * 128, q + off, ok);
    cp_async16(do_tile + dst + i * kStep * 128, dout + off, ok);
  }
}

// One step of a cp.async ring of STAGES shared-memory stages: issues the load of item `next` (when there is
// one; a commit group either way, so the wait below counts the same groups) and waits until the item
// STAGES − 1 groups back, the one about to be used, is in shared memory and visible to wgmma.
template <int STAGES, class Load>
__device__ __forceinline__ void ring_step(int64_t next, int64_t end, Load&& load) {
  if (next < end) load(next);
  cp_async_commit();
  cp_async_wait<STAGES - 1>();
  fence_proxy_async();
  __syncthreads();
}

template <int D, int WGS, int STAGES>
struct WgDkvSmem {
  static constexpr int kThreads = 128 * WGS, kTileKeys = 64 * WGS;
  static constexpr uint32_t kKw = 64 * D * 2, kKv = 2 * kKw;  // one warpgroup's 64 keys of K, then of V
  static constexpr uint32_t kQ = kWgRows * D * 2, kStage = 2 * kQ;
  static constexpr uint32_t kTiles = WGS * kKv + STAGES * kStage;  // each a multiple of 1024 bytes
  static constexpr size_t kBytes = 1024 + kTiles + STAGES * kWgRows * (2 * sizeof(float) + sizeof(int));
};

// dK/dV of 64·WGS keys (warpgroup w: keys 64w .. 64w + 63 of the tile) over one chunk of rows, 64 rows per
// stage: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (64×64, both operands in shared memory), Pᵀ and dSᵀ in registers, then
// dV += Pᵀ·dO and dK += dSᵀ·Q (64×D, B = the stage's dO / Q read MN-major). Head dims D = DK = DV.
template <int D, int WGS, int STAGES, bool WINDOW>
__global__ void __launch_bounds__(128 * WGS, WGS == 1 ? 2 : 1)
    cmp_dkdv_wgmma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q,
                          const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                          const float* __restrict__ lse, const float* __restrict__ delta,
                          bf16_t* __restrict__ dk, bf16_t* __restrict__ dv, float* __restrict__ partial,
                          NsaSizes sz, KeyVisibility vis, float scale_log2, float scale, KeyTilePlan plan) {
#ifdef NSA_WGMMA_DEVICE
  using S = WgDkvSmem<D, WGS, STAGES>;
  constexpr int kThr = S::kThreads;
  const int64_t kt = blockIdx.x, chunk = blockIdx.y, bg = blockIdx.z;
  if (!plan.takes_part(kt, chunk, sz, vis)) return;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = align_1024(smem_raw);
  unsigned char* stages = smem + WGS * S::kKv;
  float* st_lse = reinterpret_cast<float*>(smem + S::kTiles);  // [STAGES][kWgRows]
  float* st_delta = st_lse + STAGES * kWgRows;
  int* st_token = reinterpret_cast<int*>(st_delta + STAGES * kWgRows);  // −1: no row

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const GroupRows gr = group_rows(sz, bg);
  int64_t r_begin, r_end;
  plan.rows(kt, chunk, sz, vis, r_begin, r_end);
  const int64_t n_steps = ceil_div(r_end - r_begin, kWgRows);

  const int64_t i0 = kt * S::kTileKeys;
  const int64_t key_stride = sz.heads_kv * D;
  const bf16_t* k_base = k + (gr.b * sz.keys * sz.heads_kv + gr.g) * D;
  const bf16_t* v_base = v + (gr.b * sz.keys * sz.heads_kv + gr.g) * D;
#pragma unroll
  for (int w = 0; w < WGS; ++w) {
    copy_rows_sw128<D, 64, kThr>(smem + w * S::kKv, k_base, key_stride, i0 + 64 * w, sz.keys, q, tid);
    copy_rows_sw128<D, 64, kThr>(smem + w * S::kKv + S::kKw, v_base, key_stride, i0 + 64 * w, sz.keys, q,
                                 tid);
  }
  auto load_stage = [&](int64_t step) {
    const int buf = static_cast<int>(step % STAGES);
    const int64_t r0 = r_begin + step * kWgRows;
    unsigned char* stage = stages + buf * S::kStage;
    copy_query_rows<D, kThr>(stage, stage + S::kQ, q, dout, gr, r0, r_end, tid);
    if (tid < kWgRows) {
      const int64_t r = r0 + tid;
      const bool ok = r < r_end;
      const int64_t t = ok ? gr.token(r) : 0;
      const int64_t at = ok ? (gr.b * sz.heads_q + gr.g * gr.group + (r - t * gr.group)) * sz.seq + t : 0;
      cp_async4(st_lse + buf * kWgRows + tid, lse + at, ok);
      cp_async4(st_delta + buf * kWgRows + tid, delta + at, ok);
      st_token[buf * kWgRows + tid] = ok ? static_cast<int>(t) : -1;
    }
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < n_steps) load_stage(s);
    cp_async_commit();  // the K/V tiles ride with the first group
  }

  // Tokens [from, to] that see each of this lane's two keys (keys past the end: none). T < 2^31.
  const int key_a = static_cast<int>(i0) + 64 * wg + (warp & 3) * 16 + (lane >> 2), key_b = key_a + 8;
  auto first_token = [&](int key) { return key < sz.keys ? static_cast<int>(vis.from(key)) : 0x7fffffff; };
  auto last_token = [&](int key) {
    return WINDOW ? static_cast<int>(vis.to(key) < sz.seq ? vis.to(key) : sz.seq) : 0x7fffffff;
  };
  const int from_a = first_token(key_a), from_b = first_token(key_b);
  const int to_a = last_token(key_a), to_b = last_token(key_b);
  const uint32_t ks = smem_u32(smem + wg * S::kKv), vs = ks + S::kKw;

  float dka[D / 2] = {}, dva[D / 2] = {}, s[32] = {}, dp[32] = {};
  for (int64_t step = 0; step < n_steps; ++step) {
    ring_step<STAGES>(step + STAGES - 1, n_steps, load_stage);
    const int buf = static_cast<int>(step % STAGES);
    const uint32_t qst = smem_u32(stages + buf * S::kStage), dost = qst + S::kQ;
    uint32_t dsa[4][4];
    wg_dkdv_stage<D>(dka, dva, s, dp, dsa, ks, vs, qst, dost, st_lse + buf * kWgRows,
                     st_delta + buf * kWgRows, st_token + buf * kWgRows, scale_log2, lane,
                     [&](int t, int half) {
                       return t >= (half ? from_b : from_a) && (!WINDOW || t <= (half ? to_b : to_a));
                     });
    wg_wait<0>();
    __syncthreads();
  }
  cp_async_wait<0>();
  wg_hold(dka);
  wg_hold(dva);

  const bool direct = plan.chunks(kt, sz, vis) == 1;
  float* part = direct ? nullptr : partial + plan.slot(bg, kt, chunk, sz, vis) * S::kTileKeys * (2 * D);
  for (int half = 0; half < 2; ++half)
    store_dkdv<D, D>(
        half ? key_b : key_a, i0, direct, part, dk, dv, sz, gr, scale, lane,
        [&](int nt, int i) { return dka[4 * nt + 2 * half + i]; },
        [&](int nt, int i) { return dva[4 * nt + 2 * half + i]; });
#endif
}

template <int D, int WGS, int STAGES>
struct WgDqSmem {
  static constexpr int kThreads = 128 * WGS, kCtaRows = 64 * WGS;
  static constexpr int kLd = D + 8;  // padded Q and dO, read once by ldmatrix
  static constexpr uint32_t kK = kKeys * D * 2, kStage = 2 * kK;
  static constexpr uint32_t kTiles = STAGES * kStage;  // swizzled K/V stages, first (1024-byte aligned)
  static constexpr size_t kBytes = 1024 + kTiles + sizeof(bf16_t) * 2 * kCtaRows * kLd;
};

// dQ of 64·WGS query rows (warpgroup w: rows 64w .. 64w + 63): Q and dO fragments stay in registers; per tile
// of 64 compressed keys S = Q·Kᵀ and dP = dO·Vᵀ (B = K, V from shared memory), dS in registers,
// dQ += dS·K (B = the K tile read MN-major). Head dims D = DK = DV.
template <int D, int WGS, int STAGES, bool WINDOW>
__global__ void __launch_bounds__(128 * WGS, WGS == 1 ? 2 : 1)
    cmp_dq_wgmma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q,
                        const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                        const float* __restrict__ lse, const float* __restrict__ delta,
                        bf16_t* __restrict__ dq, NsaSizes sz, KeyVisibility vis, float scale_log2,
                        float scale, bool accumulate) {
#ifdef NSA_WGMMA_DEVICE
  using S = WgDqSmem<D, WGS, STAGES>;
  constexpr int kThr = S::kThreads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = align_1024(smem_raw);
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem + S::kTiles);
  bf16_t* dos = qs + S::kCtaRows * S::kLd;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const GroupRows gr = group_rows(sz, blockIdx.y);
  const int64_t rows = gr.total();
  const int64_t row0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * S::kCtaRows;  // latest first
  load_rows_async(
      qs, S::kLd, S::kCtaRows, D, q,
      [&](int r) { return row0 + r < rows ? q + gr.offset(row0 + r, D) : nullptr; }, tid, kThr);
  load_rows_async(
      dos, S::kLd, S::kCtaRows, D, q,
      [&](int r) { return row0 + r < rows ? dout + gr.offset(row0 + r, D) : nullptr; }, tid, kThr);
  cp_async_commit();

  auto visible = [&](int64_t r) { return r < rows ? vis.hi(gr.token(r)) : int64_t{0}; };
  auto load_kv = [&](int64_t kt) {
    copy_kv_tile_sw128<D, kThr>(smem + (kt % STAGES) * S::kStage, S::kK, k, v, q, kt, sz, gr, tid);
  };
  const int64_t n_kt = ceil_div(visible(std::min(row0 + S::kCtaRows, rows) - 1), kKeys);
  const int64_t kt0 = WINDOW ? vis.lo(gr.token(row0)) / kKeys : 0;  // first tile any row sees
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (kt0 + s < n_kt) load_kv(kt0 + s);
    cp_async_commit();
  }

  const int64_t ra = row0 + warp * 16 + (lane >> 2), rb = ra + 8;  // warp w of the program: rows 16w ..
  const int64_t vis_a = visible(ra), vis_b = visible(rb);
  const int lo_a = WINDOW ? static_cast<int>(vis.lo(gr.token(ra))) : 0;
  const int lo_b = WINDOW ? static_cast<int>(vis.lo(gr.token(rb))) : 0;
  const float lse_a = vis_a > 0 ? lse[gr.stat(ra)] * kLog2e : 0.f;
  const float lse_b = vis_b > 0 ? lse[gr.stat(rb)] * kLog2e : 0.f;
  const float dl_a = vis_a > 0 ? delta[gr.stat(ra)] : 0.f, dl_b = vis_b > 0 ? delta[gr.stat(rb)] : 0.f;
  const int vis_a32 = static_cast<int>(vis_a), vis_b32 = static_cast<int>(vis_b);

  cp_async_wait<STAGES - 1>();  // Q and dO
  __syncthreads();
  uint32_t qa[D / 16][4], doa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(qa[kk], a_addr(qs, S::kLd, warp * 16, kk * 16, lane));
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(doa[kk], a_addr(dos, S::kLd, warp * 16, kk * 16, lane));

  float acc[D / 2] = {}, s[32] = {}, dp[32] = {};
  for (int64_t kt = kt0; kt < n_kt; ++kt) {
    ring_step<STAGES>(kt + STAGES - 1, n_kt, load_kv);
    const uint32_t kst = smem_u32(smem + (kt % STAGES) * S::kStage), vst = kst + S::kK;
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) wgmma_rs<64, 0>(s, qa[kk], desc_k_major(kst, kKeys, kk), kk > 0);
    wg_commit();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) wgmma_rs<64, 0>(dp, doa[kk], desc_k_major(vst, kKeys, kk), kk > 0);
    wg_commit();

    const int i0 = static_cast<int>(kt * kKeys);  // keys fit in 32 bits
    wg_wait<1>();                                 // S; dP still running
    wg_hold(s);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = i0 + j * 8 + (lane & 3) * 2 + (e & 1);
        const bool seen = key < (e < 2 ? vis_a32 : vis_b32) && (!WINDOW || key >= (e < 2 ? lo_a : lo_b));
        s[4 * j + e] = seen ? fast_exp2(s[4 * j + e] * scale_log2 - (e < 2 ? lse_a : lse_b)) : 0.f;  // P
      }
    }
    wg_wait<0>();
    wg_hold(dp);
#pragma unroll
    for (int i = 0; i < 32; ++i) dp[i] = s[i] * (dp[i] - ((i & 2) ? dl_b : dl_a));  // dS
    wg_accumulate_tile<D>(acc, dp, kst);                                            // dQ += dS·K
    __syncthreads();
  }
  cp_async_wait<0>();
  wg_hold(acc);
  auto finish = [&](int64_t r, int half) {
    if (r >= rows) return;
    bf16_t* row = dq + gr.offset(r, D);
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt) {
      auto* at = reinterpret_cast<__nv_bfloat162*>(row + nt * 8 + (lane & 3) * 2);
      float2 x = make_float2(acc[4 * nt + 2 * half] * scale, acc[4 * nt + 2 * half + 1] * scale);
      if (accumulate) {  // dq += (another branch wrote it first)
        const float2 before = __bfloat1622float2(*at);
        x.x += before.x;
        x.y += before.y;
      }
      *at = __floats2bfloat162_rn(x.x, x.y);
    }
  };
  finish(ra, 0);
  finish(rb, 1);
#endif
}

template <int D, int WGS, int STAGES>
struct WgFwdSmem {
  static constexpr int kThreads = 128 * WGS, kCtaRows = 64 * WGS;
  static constexpr uint32_t kK = kKeys * D * 2, kStage = 2 * kK;  // K then V of one tile
  static constexpr uint32_t kQ = 64 * D * 2;                      // one warpgroup's rows of Q
  static constexpr uint32_t kTiles = STAGES * kStage + WGS * kQ;  // each a multiple of 1024 bytes
  static constexpr size_t kBytes = 1024 + kTiles;
};

// Forward of 64·WGS query rows (warpgroup w: rows 64w .. 64w + 63), all operands of the products in
// swizzled shared memory except P: per tile of 64 compressed keys S = Q·Kᵀ (A = the warpgroup's Q, B = K,
// both K-major), the block-causal mask and the online softmax in registers, then O += P·V (P from the
// accumulators, V read MN-major). The warpgroups share the K/V stages, so a program reads each tile once for
// 64·WGS rows: the tile traffic from L2 is what bounded the 64-row kernels. Head dims D = DK = DV.
//
// How the warpgroups share the ring of STAGES stages:
//   - RING = false (lockstep): two block barriers per tile, so all warpgroups multiply at the same time and
//     then all run their softmax while the tensor cores wait;
//   - RING = true: per stage a "full" mbarrier (the copying warps arrive once the tile is in shared memory)
//     and an "empty" one (every warp arrives when it is done with the tile). A warpgroup waits only for the
//     tile it needs, so the warpgroups drift apart and one's softmax runs under another's products. The
//     copying warps (also consumers) refill a stage at the end of their tile i once every warp has left tile
//     i − 1; they announce tile i + 1 after waiting for their own copies of it (cp.async.wait_group, then the
//     proxy fence, as the block-barrier version does), so a warpgroup can run at most about a tile ahead of
//     the copiers and the copiers a tile ahead of the slowest warpgroup. Needs STAGES >= 3.
template <int D, int WGS, int STAGES, bool WINDOW, bool RING>
__global__ void __launch_bounds__(128 * WGS, 1)
    cmp_forward_wgmma_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                             const bf16_t* __restrict__ v, bf16_t* __restrict__ out, float* __restrict__ lse,
                             NsaSizes sz, KeyVisibility vis, float scale_log2) {
#ifdef NSA_WGMMA_DEVICE
  using S = WgFwdSmem<D, WGS, STAGES>;
  constexpr int kThr = S::kThreads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = align_1024(smem_raw);
  unsigned char* qtiles = smem + STAGES * S::kStage;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  const GroupRows gr = group_rows(sz, blockIdx.y);
  const int64_t rows = gr.total();
  const int64_t row0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * S::kCtaRows;  // latest first
#pragma unroll
  for (int w = 0; w < WGS; ++w)
    load_rows_sw128<D>(
        qtiles + w * S::kQ, 64, q,
        [&](int r) { return row0 + 64 * w + r < rows ? q + gr.offset(row0 + 64 * w + r, D) : nullptr; }, tid,
        kThr);
  // Q rides with the first K/V group.

  auto visible = [&](int64_t r) { return r < rows ? vis.hi(gr.token(r)) : int64_t{0}; };
  auto lowest = [&](int64_t r) { return WINDOW ? static_cast<int>(vis.lo(gr.token(r))) : 0; };  // first key
  // The copy's row step must divide the tile: with three warpgroups the first two copy.
  constexpr int kCopyThr = kThr == 384 ? 256 : kThr;
  static_assert(!RING || STAGES >= 3,
                "the ring refills a stage two tiles after its last use at the earliest");
  const bool copier = tid < kCopyThr;  // warp-uniform
  const int64_t n_kt = ceil_div(visible(std::min(row0 + S::kCtaRows, rows) - 1), kKeys);
  const int64_t kt0 = lowest(row0) / kKeys;  // first tile any row sees
  auto stage_of = [&](int64_t kt) { return static_cast<int>((kt - kt0) % STAGES); };
  auto load_kv = [&](int64_t kt) {
    if (copier)
      copy_kv_tile_sw128<D, kCopyThr>(smem + stage_of(kt) * S::kStage, S::kK, k, v, q, kt, sz, gr, tid);
  };
  __shared__ uint64_t full[RING ? STAGES : 1], empty[RING ? STAGES : 1];
  if constexpr (RING) {
    if (tid == 0) {
      for (int st = 0; st < STAGES; ++st) {
        mbar_init(full + st, kCopyThr / 32);
        mbar_init(empty + st, 4 * WGS);
      }
      mbar_init_fence();
    }
  }
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (kt0 + s < n_kt) load_kv(kt0 + s);
    cp_async_commit();
  }
  if constexpr (RING) {
    // Q and tile kt0 (the first group) for everyone through one block barrier, which also publishes the
    // initialised barriers; then the copiers announce tile kt0, so that every tile goes through its "full"
    // barrier.
    cp_async_wait<STAGES - 2>();
    fence_proxy_async();
    __syncthreads();
    if (copier && lane == 0 && kt0 < n_kt) mbar_arrive(full);
  }

  const int64_t wrow = row0 + warp * 16;  // this warp's first row (rows ascend in t)
  const int64_t ra = wrow + (lane >> 2), rb = ra + 8;
  const int vis_a = static_cast<int>(visible(ra)), vis_b = static_cast<int>(visible(rb));
  const int vis_warp_min = static_cast<int>(visible(wrow));
  const int vis_wg_max = static_cast<int>(visible(std::min(row0 + 64 * wg + 63, rows - 1)));
  // Window bounds (all 0 without a window): a row's first key, the warp's latest, the warpgroup's earliest.
  const int lo_a = lowest(ra), lo_b = lowest(rb);
  const int lo_warp_max = lowest(std::min(wrow + 15, rows - 1)), lo_wg_min = lowest(row0 + 64 * wg);
  const uint32_t qa = smem_u32(qtiles + wg * S::kQ);

  float o[D / 2] = {}, s[32] = {};
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
  for (int64_t kt = kt0; kt < n_kt; ++kt) {
    const int64_t i = kt - kt0;
    const int st = stage_of(kt);
    if constexpr (RING) {
      mbar_wait(full + st, static_cast<uint32_t>((i / STAGES) & 1));
      fence_proxy_async();
    } else {
      ring_step<STAGES>(kt + STAGES - 1, n_kt, load_kv);
    }
    const int i0 = static_cast<int>(kt) * kKeys;      // keys fit in 32 bits
    if (i0 < vis_wg_max && i0 + kKeys > lo_wg_min) {  // warpgroup-uniform
      const uint32_t kst = smem_u32(smem + st * S::kStage), vst = kst + S::kK;
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        wgmma_ss_n64(s, desc_k_major(qa, 64, kk), desc_k_major(kst, kKeys, kk), kk > 0);
      wg_commit();
      wg_wait<0>();
      wg_hold(s);
      float mx_a = -INFINITY, mx_b = -INFINITY;
      if (i0 + kKeys <= vis_warp_min && i0 >= lo_warp_max) {  // every row sees the whole tile: no mask
#pragma unroll
        for (int i = 0; i < 32; ++i) s[i] *= scale_log2;
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int key = i0 + j * 8 + (lane & 3) * 2;
#pragma unroll
          for (int e = 0; e < 4; ++e)
            s[4 * j + e] = key + (e & 1) < (e < 2 ? vis_a : vis_b) && key + (e & 1) >= (e < 2 ? lo_a : lo_b)
                               ? s[4 * j + e] * scale_log2
                               : -INFINITY;
        }
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        mx_a = fmaxf(mx_a, fmaxf(s[4 * j], s[4 * j + 1]));
        mx_b = fmaxf(mx_b, fmaxf(s[4 * j + 2], s[4 * j + 3]));
      }
      const float2 corr =
          online_softmax_step(reinterpret_cast<float(&)[8][4]>(s), mx_a, mx_b, m_a, m_b, l_a, l_b);
      rescale_rows(o, corr);
      wg_accumulate_tile<D>(o, s, vst);  // O += P·V (waits for the product)
    }
    if constexpr (RING) {
      __syncwarp();
      if (lane == 0) mbar_arrive(empty + st);
      if (copier) {
        // Tile i + 1 went out STAGES − 2 commit groups ago (or in the prologue).
        cp_async_wait<STAGES - 3>();
        fence_proxy_async();
        __syncwarp();
        if (lane == 0 && kt + 1 < n_kt) mbar_arrive(full + stage_of(kt + 1));
        // Tile i + STAGES − 1 goes to the stage tile i − 1 held, once every warp has left that.
        if (kt + STAGES - 1 < n_kt) {
          if (i >= 1) mbar_wait(empty + stage_of(kt - 1), static_cast<uint32_t>(((i - 1) / STAGES) & 1));
          load_kv(kt + STAGES - 1);
        }
        cp_async_commit();
      }
    } else {
      __syncthreads();
    }
  }
  cp_async_wait<0>();

  l_a = quad_sum(l_a);
  l_b = quad_sum(l_b);
  auto acc = [&](int j, int e) { return o[4 * j + e]; };
  store_forward_row<D>(out, lse, gr, rows, ra, m_a, l_a, 0, lane, acc);
  store_forward_row<D>(out, lse, gr, rows, rb, m_b, l_b, 1, lane, acc);
#endif
}

// Adds the chunk partials of each key tile that has several, in chunk order. Program (kt, bg, z) takes the
// elements z·blockDim.x + i (grid-stride over z), so that many programs share a tile of many chunks.
template <int DK, int DV>
__global__ void cmp_reduce_kernel(const float* __restrict__ partial, bf16_t* __restrict__ dk,
                                  bf16_t* __restrict__ dv, NsaSizes sz, KeyVisibility vis, KeyTilePlan plan) {
  const int64_t kt = blockIdx.x, bg = blockIdx.y;
  const int64_t n_chunks = plan.chunks(kt, sz, vis);
  if (n_chunks <= 1) return;
  const int64_t b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t slot_floats = plan.tile_keys * (DK + DV);
  const float* base = partial + plan.slot(bg, kt, plan.first_chunk(kt, sz, vis), sz, vis) * slot_floats;
  for (int64_t idx = static_cast<int64_t>(blockIdx.z) * blockDim.x + threadIdx.x; idx < slot_floats;
       idx += static_cast<int64_t>(gridDim.z) * blockDim.x) {
    const int64_t local = idx / (DK + DV), col = idx % (DK + DV);
    const int64_t key = kt * plan.tile_keys + local;
    if (key >= sz.keys) continue;
    float sum = 0.f;
#pragma unroll 4
    for (int64_t c = 0; c < n_chunks; ++c) sum += base[c * slot_floats + idx];
    const int64_t row = (b * sz.keys + key) * sz.heads_kv + g;
    if (col < DK) {
      dk[row * DK + col] = __float2bfloat16_rn(sum);
    } else {
      dv[row * DV + col - DK] = __float2bfloat16_rn(sum);
    }
  }
}

bool tensor_core_path(ScalarType dtype, const NsaSizes& sz, std::initializer_list<const void*> ptrs) {
  return dtype == ScalarType::bf16 && tensor_core_dims(sz.dim_k, sz.dim_v) && aligned16(ptrs);
}
bool tensor_core_path(const NsaBackwardParams& p) {
  return tensor_core_path(p.dtype, p.sz, {p.dout, p.q, p.k, p.v, p.dq, p.dk, p.dv});
}

// The wgmma kernels: head dims (64, 64) or (128, 128) on a compute-capability 9.0 device, and only when this
// build holds their sm_90a code (in other device passes they are empty, with a handful of registers).
constexpr int kWgGroups = 1, kWgStages = 2;  // warpgroups per program, shared-memory stages (see launch)
// Forward: three warpgroups (192 rows) share each K/V tile, two stages. Same-run H100 at 64k (2026-11-23):
// mma.sync 128 rows 18.5 ms; wgmma 128 rows 13.4 ms (2 stages) / 13.9 ms (3); 192 rows 12.0 / 12.1 ms. 8k:
// 0.46 → 0.40 ms. Two warpgroups for dQ (sharing K/V) measured no faster (43.2 vs 43.3 ms backward).
constexpr int kWgFwdGroups = 3, kWgFwdStages = 2;
// The mbarrier ring (cmp_forward_wgmma_kernel, RING = true) with this many stages unless a test or benchmark
// asks for another sharing (set_group_forward_sync).
constexpr int kWgFwdRingStages = 4;
std::atomic<GroupForwardSync> g_forward_sync{GroupForwardSync::automatic};
bool wgmma_path(const NsaSizes& sz) { return sz.dim_k == sz.dim_v && sz.dim_k != 192 && wgmma_available(); }
bool wgmma_path(const NsaBackwardParams& p) { return wgmma_path(p.sz); }
// Keys per dK/dV program (the plan's tile): the wgmma kernel's, else the mma.sync kernel's.
static_assert(WgDkvSmem<64, kWgGroups, kWgStages>::kTileKeys == kKeys * kWgGroups &&
              WgDkvSmem<128, kWgGroups, kWgStages>::kTileKeys == kKeys * kWgGroups);
// Long sequences: two warpgroups share each stage of query rows (128 keys per dK/dV program, three stages,
// one program per SM), which halves the Q/dO traffic into shared memory per product; at 64k tokens 4% faster
// than one warpgroup, but much slower at 8k, where the short chunks leave single programs idle at their
// start and end. Rows = T·G of one KV head.
constexpr int64_t kWideRows = int64_t{1} << 19;
constexpr int kWideGroups = 2, kWideStages = 3;
std::atomic<int64_t> g_wide_rows{kWideRows};
bool wide_backward(const NsaSizes& sz) { return sz.seq * (sz.heads_q / sz.heads_kv) >= g_wide_rows.load(); }
int64_t tile_keys(const NsaBackwardParams& p) {
  return wgmma_path(p) ? kKeys * (wide_backward(p.sz) ? kWideGroups : kWgGroups) : kKeys;
}

// Chunk length: about 2048 dK/dV programs over the whole backward (several waves on 132 SMs, so that the last
// wave's idle share stays small), at least 1024 rows so that loading the key tile is amortised; a multiple of
// the stage. `single_chunk`: one chunk holding every row (no partials; the raw-key attention, whose many key
// tiles fill the machine anyway).
KeyTilePlan plan_chunks(const NsaSizes& sz, const KeyVisibility& vis, int64_t tile_keys, bool single_chunk) {
  KeyTilePlan plan{tile_keys, 1, 1, ceil_div(sz.keys, tile_keys), 0};
  const int64_t total = sz.seq * (sz.heads_q / sz.heads_kv);
  if (single_chunk) {
    plan.chunk_rows = std::max<int64_t>(total, 1);
  } else {
    int64_t pairs = 0;
    for (int64_t kt = 0; kt < plan.n_kt; ++kt)
      pairs += plan.end_row(kt, sz, vis) - plan.first_row(kt, sz, vis);
    pairs *= sz.batch * sz.heads_kv;
    plan.chunk_rows = std::max<int64_t>(1024, ceil_div(ceil_div(pairs, 2048), kWgRows) * kWgRows);
  }
  plan.n_chunks = std::max<int64_t>(1, ceil_div(total, plan.chunk_rows));
  for (int64_t kt = 0; kt < plan.n_kt; ++kt) plan.slots_per_bg += plan.chunks(kt, sz, vis);
  return plan;
}
KeyTilePlan plan_chunks(const NsaBackwardParams& p) {
  return plan_chunks(p.sz, compressed_visibility(p.geo, p.sz.keys), tile_keys(p), false);
}

template <class Kernel>
Status allow_smem(Kernel kernel, size_t bytes) {
  const cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  return {e, nullptr};
}

struct CmpBackwardLayout {
  float* delta;
  float* partial;
  double* delta64;
  size_t bytes;
};

CmpBackwardLayout cmp_backward_layout(const NsaBackwardParams& p) {
  Carver c{static_cast<char*>(p.workspace)};
  CmpBackwardLayout l{};
  const size_t rows = static_cast<size_t>(p.sz.batch * p.sz.seq * p.sz.heads_q);
  if (tensor_core_path(p)) {
    const KeyTilePlan plan = plan_chunks(p);
    l.delta = c.take<float>(rows);
    const bool split = plan.slots_per_bg > plan.n_kt;
    l.partial = c.take<float>(split ? static_cast<size_t>(p.sz.batch * p.sz.heads_kv * plan.slots_per_bg *
                                                          plan.tile_keys * (p.sz.dim_k + p.sz.dim_v))
                                    : 0);
  } else {
    l.delta64 = c.take<double>(rows);
  }
  l.bytes = c.used;
  return l;
}

// Operands of a group-row backward: the compressed branch's, or the raw-key attention's.
struct GroupBackward {
  NsaSizes sz;
  KeyVisibility vis;
  float scale;
  const bf16_t *dout, *q, *k, *v;
  const float *lse, *delta;
  bf16_t *dq, *dk, *dv;
  float* partial;              // f32 chunk partials (unused when every key tile has one chunk)
  bool accumulate_dq = false;  // dq += (the wgmma dQ kernel)
};

GroupBackward group_backward(const NsaBackwardParams& p, const CmpBackwardLayout& ws) {
  return {p.sz,
          compressed_visibility(p.geo, p.sz.keys),
          static_cast<float>(p.scale),
          static_cast<const bf16_t*>(p.dout),
          static_cast<const bf16_t*>(p.q),
          static_cast<const bf16_t*>(p.k),
          static_cast<const bf16_t*>(p.v),
          static_cast<const float*>(p.lse),
          p.delta_in ? p.delta_in : ws.delta,
          static_cast<bf16_t*>(p.dq),
          static_cast<bf16_t*>(p.dk),
          static_cast<bf16_t*>(p.dv),
          ws.partial,
          p.accumulate_dq};
}

// Sums the chunk partials of the key tiles that have several.
template <int DK, int DV>
Status launch_reduce(const GroupBackward& g, const KeyTilePlan& plan, cudaStream_t stream) {
  if (plan.slots_per_bg == plan.n_kt) return {};
  constexpr int kThreadsReduce = 256;
  const unsigned split = static_cast<unsigned>(ceil_div(plan.tile_keys * (DK + DV), kThreadsReduce));
  cmp_reduce_kernel<DK, DV>
      <<<dim3(static_cast<unsigned>(plan.n_kt), static_cast<unsigned>(g.sz.batch * g.sz.heads_kv), split),
         kThreadsReduce, 0, stream>>>(g.partial, g.dk, g.dv, g.sz, g.vis, plan);
  return last_launch();
}

// The Hopper backward: dQ, dK/dV, the partials' sum. One warpgroup per program and two programs per SM: two
// warpgroups sharing each stage (128 keys, three stages, one program per SM) were 4% faster at 64k tokens but
// much slower at 8k, where the short chunks leave single programs per SM idle at their start and end.
template <int D, int WGS, int STAGES, bool WINDOW>
Status launch_wgmma_backward_as(const GroupBackward& g, const KeyTilePlan& plan, cudaStream_t stream) {
  const float scale_log2 = g.scale * kLog2e;
  const unsigned bh = static_cast<unsigned>(g.sz.batch * g.sz.heads_kv);
  {
    using S = WgDqSmem<D, WGS, STAGES>;
    auto kernel = cmp_dq_wgmma_kernel<D, WGS, STAGES, WINDOW>;
    if (Status st = allow_smem(kernel, S::kBytes); !st.ok()) return st;
    const unsigned tiles =
        static_cast<unsigned>(ceil_div(g.sz.seq * (g.sz.heads_q / g.sz.heads_kv), S::kCtaRows));
    kernel<<<dim3(tiles, bh), S::kThreads, S::kBytes, stream>>>(
        g.dout, g.q, g.k, g.v, g.lse, g.delta, g.dq, g.sz, g.vis, scale_log2, g.scale, g.accumulate_dq);
    if (Status st = last_launch(); !st.ok()) return st;
  }
  if (plan.n_kt == 0) return {};
  {
    using S = WgDkvSmem<D, WGS, STAGES>;
    auto kernel = cmp_dkdv_wgmma_kernel<D, WGS, STAGES, WINDOW>;
    if (Status st = allow_smem(kernel, S::kBytes); !st.ok()) return st;
    kernel<<<dim3(static_cast<unsigned>(plan.n_kt), static_cast<unsigned>(plan.n_chunks), bh), S::kThreads,
             S::kBytes, stream>>>(g.dout, g.q, g.k, g.v, g.lse, g.delta, g.dk, g.dv, g.partial, g.sz, g.vis,
                                  scale_log2, g.scale, plan);
    if (Status st = last_launch(); !st.ok()) return st;
  }
  return launch_reduce<D, D>(g, plan, stream);
}
// The kernels without the window's bounds when there is none (the compressed branch, causal attention).
template <int D, int WGS, int STAGES>
Status launch_wgmma_backward(const GroupBackward& g, const KeyTilePlan& plan, cudaStream_t stream) {
  return g.vis.window > 0 ? launch_wgmma_backward_as<D, WGS, STAGES, true>(g, plan, stream)
                          : launch_wgmma_backward_as<D, WGS, STAGES, false>(g, plan, stream);
}

// The Hopper backward at the warpgroup count wide_backward picks (the plan's tile must match it).
Status launch_group_backward(const GroupBackward& g, const KeyTilePlan& plan, cudaStream_t stream) {
  if (wide_backward(g.sz))
    return g.sz.dim_k == 64 ? launch_wgmma_backward<64, kWideGroups, kWideStages>(g, plan, stream)
                            : launch_wgmma_backward<128, kWideGroups, kWideStages>(g, plan, stream);
  return g.sz.dim_k == 64 ? launch_wgmma_backward<64, kWgGroups, kWgStages>(g, plan, stream)
                          : launch_wgmma_backward<128, kWgGroups, kWgStages>(g, plan, stream);
}

// The Hopper forward over the keys `vis` describes.
template <int D>
Status launch_wgmma_forward(const NsaSizes& sz, const KeyVisibility& vis, const bf16_t* q, const bf16_t* k,
                            const bf16_t* v, bf16_t* out, float* lse, float scale, cudaStream_t stream) {
  auto run = [&]<int STAGES, bool RING>() {
    using S = WgFwdSmem<D, kWgFwdGroups, STAGES>;
    auto kernel = vis.window > 0 ? cmp_forward_wgmma_kernel<D, kWgFwdGroups, STAGES, true, RING>
                                 : cmp_forward_wgmma_kernel<D, kWgFwdGroups, STAGES, false, RING>;
    if (Status st = allow_smem(kernel, S::kBytes); !st.ok()) return st;
    const dim3 grid(static_cast<unsigned>(ceil_div(sz.seq * (sz.heads_q / sz.heads_kv), S::kCtaRows)),
                    static_cast<unsigned>(sz.batch * sz.heads_kv));
    kernel<<<grid, S::kThreads, S::kBytes, stream>>>(q, k, v, out, lse, sz, vis, scale * kLog2e);
    return last_launch();
  };
  switch (g_forward_sync.load()) {
    case GroupForwardSync::lockstep:
      return run.template operator()<kWgFwdStages, false>();
    case GroupForwardSync::ring3:
      return run.template operator()<3, true>();
    default:
      return run.template operator()<kWgFwdRingStages, true>();
  }
}

}  // namespace

// The probe is a kernel that is empty outside sm_90a device passes (a handful of registers there).
bool wgmma_available() {
  static std::atomic<int> ready[64];  // per device: 0 unknown, 1 yes, 2 no
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
  int state = ready[dev].load(std::memory_order_relaxed);
  if (state == 0) {
    int major = 0, minor = 0;
    cudaFuncAttributes attr{};
    const bool ok =
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess &&
        cudaFuncGetAttributes(&attr, cmp_dkdv_wgmma_kernel<64, kWgGroups, kWgStages, false>) == cudaSuccess &&
        major == 9 && minor == 0 && attr.numRegs >= 64;
    state = ok ? 1 : 2;
    ready[dev].store(state, std::memory_order_relaxed);
  }
  return state == 1;
}
}  // namespace nsa::kernels::nsa_impl

namespace nsa::kernels {
using namespace nsa_impl;

Status launch_nsa_cmp_forward(const NsaCmpForwardParams& p, cudaStream_t stream) {
  if (!tensor_core_path(p.dtype, p.sz, {p.q, p.k, p.v, p.out})) return simt_cmp_forward(p, stream);
  const float scale_log2 = static_cast<float>(p.scale) * kLog2e;
  if (wgmma_path(p.sz)) {
    const KeyVisibility vis = compressed_visibility(p.geo, p.sz.keys);
    const auto* q = static_cast<const bf16_t*>(p.q);
    const auto* k = static_cast<const bf16_t*>(p.k);
    const auto* v = static_cast<const bf16_t*>(p.v);
    auto* out = static_cast<bf16_t*>(p.out);
    auto* lse = static_cast<float*>(p.lse);
    const float scale = static_cast<float>(p.scale);
    return p.sz.dim_k == 64 ? launch_wgmma_forward<64>(p.sz, vis, q, k, v, out, lse, scale, stream)
                            : launch_wgmma_forward<128>(p.sz, vis, q, k, v, out, lse, scale, stream);
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(p.sz.seq * (p.sz.heads_q / p.sz.heads_kv), kFwdRows)),
                  static_cast<unsigned>(p.sz.batch * p.sz.heads_kv));
  Status st{};
  dispatch_dims(p.sz.dim_k, p.sz.dim_v, [&]<int DK, int DV>() {
    auto kernel = cmp_forward_kernel<DK, DV>;
    st = allow_smem(kernel, FwdSmem<DK, DV>::kBytes);
    if (!st.ok()) return;
    kernel<<<grid, kFwdThreads, FwdSmem<DK, DV>::kBytes, stream>>>(
        static_cast<const bf16_t*>(p.q), static_cast<const bf16_t*>(p.k), static_cast<const bf16_t*>(p.v),
        static_cast<bf16_t*>(p.out), static_cast<float*>(p.lse), p.sz, p.geo, scale_log2);
    st = last_launch();
  });
  return st;
}

size_t nsa_cmp_backward_workspace(const NsaBackwardParams& p) {
  NsaBackwardParams measure = p;
  measure.workspace = nullptr;
  return cmp_backward_layout(measure).bytes;
}

void set_wide_backward_rows(int64_t rows) { g_wide_rows.store(rows < 0 ? kWideRows : rows); }
void set_group_forward_sync(GroupForwardSync choice) { g_forward_sync.store(choice); }

bool nsa_cmp_backward_accumulates(const NsaBackwardParams& p) { return tensor_core_path(p) && wgmma_path(p); }

Status launch_nsa_cmp_backward(const NsaBackwardParams& p, cudaStream_t stream) {
  const CmpBackwardLayout ws = cmp_backward_layout(p);
  if (!tensor_core_path(p)) {
    if (p.accumulate_dq) return invalid("nsa_cmp_backward: this path overwrites dq");
    if (Status s = row_delta<double>(p, ws.delta64, stream); !s.ok()) return s;
    return simt_cmp_backward(p, ws.delta64, stream);
  }
  if (p.accumulate_dq && !nsa_cmp_backward_accumulates(p))
    return invalid("nsa_cmp_backward: this path overwrites dq (accumulate_dq is for the wgmma path)");
  if (p.delta_in == nullptr)
    if (Status s = row_delta<float>(p, ws.delta, stream); !s.ok()) return s;
  const KeyTilePlan plan = plan_chunks(p);
  const GroupBackward g = group_backward(p, ws);
  if (wgmma_path(p)) return launch_group_backward(g, plan, stream);
  const float scale_log2 = static_cast<float>(p.scale) * kLog2e, scale = static_cast<float>(p.scale);
  const unsigned bh = static_cast<unsigned>(p.sz.batch * p.sz.heads_kv);
  Status st{};
  dispatch_dims(p.sz.dim_k, p.sz.dim_v, [&]<int DK, int DV>() {
    const auto* dout = static_cast<const bf16_t*>(p.dout);
    const auto* q = static_cast<const bf16_t*>(p.q);
    const auto* k = static_cast<const bf16_t*>(p.k);
    const auto* v = static_cast<const bf16_t*>(p.v);
    const auto* lse = static_cast<const float*>(p.lse);
    auto dq_kernel = cmp_dq_kernel<DK, DV>;
    if (st = allow_smem(dq_kernel, DqSmem<DK, DV>::kBytes); !st.ok()) return;
    const dim3 dq_grid(static_cast<unsigned>(ceil_div(p.sz.seq * (p.sz.heads_q / p.sz.heads_kv), kRows)), bh);
    dq_kernel<<<dq_grid, kThreads, DqSmem<DK, DV>::kBytes, stream>>>(
        dout, q, k, v, lse, g.delta, static_cast<bf16_t*>(p.dq), p.sz, p.geo, scale_log2, scale);
    if (st = last_launch(); !st.ok() || plan.n_kt == 0) return;
    auto dkdv_kernel = cmp_dkdv_kernel<DK, DV>;
    if (st = allow_smem(dkdv_kernel, DkvSmem<DK, DV>::kBytes); !st.ok()) return;
    const dim3 grid(static_cast<unsigned>(plan.n_kt), static_cast<unsigned>(plan.n_chunks), bh);
    dkdv_kernel<<<grid, kThreads, DkvSmem<DK, DV>::kBytes, stream>>>(
        dout, q, k, v, lse, g.delta, static_cast<bf16_t*>(p.dk), static_cast<bf16_t*>(p.dv), ws.partial, p.sz,
        p.geo, scale_log2, scale, plan);
    if (st = last_launch(); !st.ok()) return;
    st = launch_reduce<DK, DV>(g, plan, stream);
  });
  return st;
}

}  // namespace nsa::kernels

// ---- the same kernels over raw keys: causal / sliding-window attention (attention/group_attention.h) ----

namespace nsa::kernels {
using namespace nsa_impl;
namespace {

NsaSizes raw_sizes(const FlashAttentionShape& z) {
  return {z.batch, z.seq, z.heads_q, z.heads_kv, z.seq, z.head_dim, z.head_dim};
}
// Key i is token i: visible from t iff i <= t and (window > 0) t − i < window.
KeyVisibility raw_visibility(const FlashAttentionShape& z) {
  const int64_t w = (z.window <= 0 || z.window >= z.seq) ? 0 : z.window;
  return {1, 1, w, z.seq};
}
// Strides of a contiguous [B, T, H, D] tensor.
bool dense_bthd(const BthStrides& s, const FlashAttentionShape& z, int64_t heads) {
  return s.head == z.head_dim && s.seq == heads * z.head_dim && s.batch == z.seq * heads * z.head_dim;
}
bool group_shape_ok(const FlashAttentionShape& z) {
  return (z.head_dim == 64 || z.head_dim == 128) && z.heads_kv > 0 && z.heads_q % z.heads_kv == 0 &&
         z.seq > 0 && z.seq * (z.heads_q / z.heads_kv) < (int64_t{1} << 31) && wgmma_available();
}

}  // namespace

bool group_attention_ok(const FlashForwardParams& p) {
  const FlashAttentionShape& z = p.shape;
  return group_shape_ok(z) && dense_bthd(p.q_strides, z, z.heads_q) &&
         dense_bthd(p.out_strides, z, z.heads_q) && dense_bthd(p.k_strides, z, z.heads_kv) &&
         dense_bthd(p.v_strides, z, z.heads_kv) && aligned16({p.q, p.k, p.v, p.out});
}

bool group_attention_ok(const FlashBackwardParams& p) {
  const FlashAttentionShape& z = p.shape;
  for (const BthStrides* s : {&p.q_strides, &p.out_strides, &p.dout_strides, &p.dq_strides})
    if (!dense_bthd(*s, z, z.heads_q)) return false;
  for (const BthStrides* s : {&p.k_strides, &p.v_strides, &p.dk_strides, &p.dv_strides})
    if (!dense_bthd(*s, z, z.heads_kv)) return false;
  return group_shape_ok(z) && aligned16({p.q, p.k, p.v, p.out, p.dout, p.dq, p.dk, p.dv});
}

Status launch_group_attention_forward(const FlashForwardParams& p, cudaStream_t stream) {
  const NsaSizes sz = raw_sizes(p.shape);
  const KeyVisibility vis = raw_visibility(p.shape);
  const auto* q = static_cast<const bf16_t*>(p.q);
  const auto* k = static_cast<const bf16_t*>(p.k);
  const auto* v = static_cast<const bf16_t*>(p.v);
  auto* out = static_cast<bf16_t*>(p.out);
  return sz.dim_k == 64 ? launch_wgmma_forward<64>(sz, vis, q, k, v, out, p.lse, p.shape.scale, stream)
                        : launch_wgmma_forward<128>(sz, vis, q, k, v, out, p.lse, p.shape.scale, stream);
}

Status launch_group_attention_backward(const FlashBackwardParams& p, cudaStream_t stream) {
  const GroupBackward g{raw_sizes(p.shape),
                        raw_visibility(p.shape),
                        p.shape.scale,
                        static_cast<const bf16_t*>(p.dout),
                        static_cast<const bf16_t*>(p.q),
                        static_cast<const bf16_t*>(p.k),
                        static_cast<const bf16_t*>(p.v),
                        p.lse,
                        p.delta,
                        static_cast<bf16_t*>(p.dq),
                        static_cast<bf16_t*>(p.dk),
                        static_cast<bf16_t*>(p.dv),
                        nullptr,
                        p.accumulate_dq};
  // One chunk per key tile: every dK/dV row written once, straight to bf16 (no partials, no workspace).
  const KeyTilePlan plan =
      plan_chunks(g.sz, g.vis, kKeys * (wide_backward(g.sz) ? kWideGroups : kWgGroups), true);
  return launch_group_backward(g, plan, stream);
}

}  // namespace nsa::kernels
