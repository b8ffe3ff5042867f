// Block selection (paper eqs. 9–11) fused into one pass over the compressed keys: no [heads × T × blocks]
// tensor ever exists.
//
// A program takes the G query heads of `tokens` = 128 / G consecutive tokens of one KV group (128 rows, 16
// per warp, so each key tile in shared memory feeds 128 rows; 8 warps and two programs per SM hide the
// latency of the short steps below) and walks the compressed keys in tiles of 64:
//   1. S = Q·Kcᵀ on tensor cores, p = exp(scale·S − lse) (0 where the block-causal mask hides the key);
//   2. eq. 10's group sum over the heads, then each (token, selection block j) touched by the tile adds
//      Σ_i p[i] · overlap(i, j) / d (eq. 9 as overlap weights) into a small ring of per-token importances;
//   3. blocks whose compressed blocks have all been seen are final: a warp merges them into the token's
//      running top list (sorted, one entry per lane, ties to the lower block index), skipping forced ones.
// At the end each token's list plus its forced blocks are written in ascending order, −1 padded.
// Two kernels share steps 2–3:
//   - warp-owned tokens (G = 1, 2, 4, 8, 16): a warp's 16 rows are whole tokens, so the group sum runs in
//     registers (xor shuffles over the accumulator rows of one token) and each warp scores and merges its own
//     tokens; the warps meet only at the one barrier per key tile. This is the common case (the benchmark's
//     G = 16); it replaced the general kernel there, whose block-wide phases per tile (p through shared
//     memory, head sums, overlaps, merges, four barriers) made it latency-bound;
//   - any other group size up to 128 (tokens spanning warps): p goes through shared memory and the phases
//     are block-wide.
// The scores are f32 sums of bf16 products (the CPU reference sums in double), so blocks whose importances
// tie to within rounding can be ordered differently; see tests/ops/test_nsa_cuda.cpp.
#include <climits>

#include "kernels/nsa/nsa_device.cuh"
#include "kernels/nsa/nsa_internal.h"

namespace nsa::kernels::nsa_impl {
namespace {

constexpr int kThreads = 256;
constexpr int kRows = 128;  // query rows per program: 8 warps × 16 rows
constexpr int kKeys = 64;
constexpr int kMaxFree = 32;  // free slots per token: one list entry per lane
constexpr int kPsLd = kKeys + 4;

struct SelectShape {
  int tokens;              // tokens per program
  int ring;                // live selection blocks per token (a power of two: slots are j & (ring − 1))
  FastDiv by_slc, by_seg;  // ÷ l' and ÷ l'/d, the divisions of every key tile
};

SelectShape select_shape(const NsaSizes& sz, const NsaGeometry& geo) {
  const int64_t group = sz.heads_q / sz.heads_kv;
  // Live blocks: from the first not yet final to the last one the current tile touches.
  const int64_t live = (kKeys * geo.cmp_stride + geo.cmp_block) / geo.slc_block + 6;
  int ring = 1;
  while (ring < live) ring *= 2;
  return {static_cast<int>(kRows / group), ring, FastDiv::of(geo.slc_block),
          FastDiv::of(geo.slc_block / geo.cmp_stride)};
}

template <int DK>
struct SelectSmem {
  static constexpr int kLdK = DK + 8;
  static constexpr size_t kFixed =
      sizeof(bf16_t) * (kRows * kLdK + 2 * kKeys * kLdK) + sizeof(float) * (kRows * kPsLd + kRows);
  static size_t bytes(const SelectShape& s) {
    return kFixed + sizeof(float) * s.tokens * s.ring + (sizeof(float) + sizeof(int)) * s.tokens * kMaxFree;
  }
};

// Eq. 9 in units of d-token segments: compressed block i covers segments [i, i + L), selection block j
// covers [j·P, (j+1)·P); the weight is the number of segments they share. Sum over this tile's compressed
// blocks [i0, i_end) of prow[i − i0] (a token's group-summed probabilities) weighted by their overlap with j.
// Block and compressed-block numbers fit in 32 bits (T < 2^31), and 32-bit integer arithmetic costs far fewer
// instructions than 64-bit: this kernel is bound by instruction issue.
__device__ __forceinline__ float overlap_sum(const float* prow, int j, int i0, int i_end, int seg_l,
                                             int seg_p) {
  const int first = j * seg_p - seg_l + 1, last = (j + 1) * seg_p - 1;
  const int ia = (first > i0 ? first : i0) - i0;
  const int ib = (last < i_end - 1 ? last : i_end - 1) - i0;
  const int seg0 = j * seg_p - i0, seg1 = seg0 + seg_p;  // j's segments, tile-relative
  float sum = 0.f;
  for (int i = ia; i <= ib; ++i) {
    const int hi = i + seg_l < seg1 ? i + seg_l : seg1, lo = i > seg0 ? i : seg0;
    sum += prow[i] * static_cast<float>(hi - lo);
  }
  return sum;
}

// Warp-wide: merges the final blocks [ja, jb) of token t (its ring row and list) into its top list and
// clears their ring slots. The list holds one entry per lane, sorted by decreasing score; a candidate enters
// only if strictly larger than the last entry, so ties go to the lower block index.
__device__ __forceinline__ void merge_final(float* ring_row, int ring, float* list_score, int* list_block,
                                            int64_t t, int64_t ja, int64_t jb, const NsaGeometry& geo,
                                            const FastDiv& by_slc, int lane) {
  const int64_t vis = by_slc.div(static_cast<int>(t)) + 1;
  const int free_slots = static_cast<int>(geo.top_n - forced_count(vis, geo));
  float score = list_score[lane];
  int block = list_block[lane];
  float worst = free_slots > 0 ? __shfl_sync(0xffffffffu, score, free_slots - 1) : INFINITY;
  for (int64_t base = ja; base < jb; base += 32) {
    const int64_t j = base + lane;
    const bool cand = j < jb && j < vis && !is_forced(j, vis, geo);
    float value = 0.f;
    if (j < jb) {
      const int slot = static_cast<int>(j) & (ring - 1);
      value = ring_row[slot];
      ring_row[slot] = 0.f;
    }
    unsigned mask = __ballot_sync(0xffffffffu, cand && value > worst);
    while (mask != 0) {
      const int src = __ffs(mask) - 1;
      mask &= mask - 1;
      const float cv = __shfl_sync(0xffffffffu, value, src);
      if (!(cv > worst)) continue;  // the list improved since the ballot
      // Entries at least as large rank first (equal ones hold lower block numbers).
      const int pos = __popc(__ballot_sync(0xffffffffu, lane < free_slots && score >= cv));
      const float up_score = __shfl_up_sync(0xffffffffu, score, 1);
      const int up_block = __shfl_up_sync(0xffffffffu, block, 1);
      if (lane > pos && lane < free_slots) {
        score = up_score;
        block = up_block;
      }
      if (lane == pos) {
        score = cv;
        block = static_cast<int>(base + src);
      }
      worst = __shfl_sync(0xffffffffu, score, free_slots - 1);
    }
  }
  list_score[lane] = score;
  list_block[lane] = block;
}

// Warp-wide: writes token t's selection (its list of free picks and its forced blocks, ascending, −1 padded).
__device__ __forceinline__ void write_selection(int32_t* out, const int* list_block, int64_t t,
                                                const NsaGeometry& geo, int lane) {
  const int64_t vis = t / geo.slc_block + 1;
  const int free_slots = static_cast<int>(geo.top_n - forced_count(vis, geo));
  const int listed = lane < free_slots ? list_block[lane] : -1;
  // Forced blocks, ascending: [0, a) then [max(a, vis − local), vis).
  const int64_t a = geo.init_blocks < vis ? geo.init_blocks : vis;
  const int64_t c = vis - geo.local_blocks > a ? vis - geo.local_blocks : a;
  const int64_t fj = lane < a ? lane : c + (lane - a);
  const int forced = fj < vis ? static_cast<int>(fj) : -1;
  int rank_listed = 0, rank_forced = 0, count = 0;
  for (int src = 0; src < 32; ++src) {
    const int ol = __shfl_sync(0xffffffffu, listed, src), of = __shfl_sync(0xffffffffu, forced, src);
    count += (ol >= 0) + (of >= 0);
    rank_listed += (ol >= 0 && ol < listed) + (of >= 0 && of < listed);
    rank_forced += (ol >= 0 && ol < forced) + (of >= 0 && of < forced);
  }
  if (listed >= 0) out[rank_listed] = listed;
  if (forced >= 0) out[rank_forced] = forced;
  for (int64_t slot = count + lane; slot < geo.top_n; slot += 32) out[slot] = -1;
}

// Block j is final once its last compressed block (j+1)·l'/d − 1 is below the tile starting at i_next.
__device__ __forceinline__ int64_t first_open_block(int64_t i_next, const NsaGeometry& geo,
                                                    const FastDiv& by_slc) {
  return by_slc.div(static_cast<int>(i_next * geo.cmp_stride) + static_cast<int>(geo.slc_block)) - 1;
}

template <int DK>
__global__ void __launch_bounds__(kThreads, 2)
    select_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ kc, const float* __restrict__ lse,
                  int32_t* __restrict__ indices, NsaSizes sz, NsaGeometry geo, float scale_log2,
                  SelectShape shape) {
  using S = SelectSmem<DK>;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);
  bf16_t* ks = qs + kRows * S::kLdK;
  float* ps = reinterpret_cast<float*>(ks + 2 * kKeys * S::kLdK);  // [kRows][kPsLd]
  float* lse2 = ps + kRows * kPsLd;                                // [kRows], log2 units
  float* ring = lse2 + kRows;                                      // [tokens][ring]
  float* list_score = ring + shape.tokens * shape.ring;            // [tokens][kMaxFree]
  int* list_block = reinterpret_cast<int*>(list_score + shape.tokens * kMaxFree);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t group = sz.heads_q / sz.heads_kv, bg = blockIdx.y;
  const int64_t b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t t0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * shape.tokens;  // latest first
  const int rows_used = shape.tokens * static_cast<int>(group);
  auto token_of = [&](int r) { return t0 + r / group; };
  auto row_valid = [&](int r) { return r < rows_used && token_of(r) < sz.seq; };
  auto head_of = [&](int r) { return g * group + r % group; };

  load_rows_async(
      qs, S::kLdK, kRows, DK, q,
      [&](int r) -> const bf16_t* {
        return row_valid(r) ? q + ((b * sz.seq + token_of(r)) * sz.heads_q + head_of(r)) * DK : nullptr;
      },
      tid, kThreads);
  cp_async_commit();
  for (int r = tid; r < kRows; r += kThreads)
    lse2[r] = row_valid(r) ? lse[(b * sz.heads_q + head_of(r)) * sz.seq + token_of(r)] * kLog2e : 0.f;
  for (int i = tid; i < shape.tokens * shape.ring; i += kThreads) ring[i] = 0.f;
  for (int i = tid; i < shape.tokens * kMaxFree; i += kThreads) {
    list_score[i] = -INFINITY;
    list_block[i] = -1;
  }

  auto visible = [&](int r) {
    return row_valid(r) ? visible_cmp(token_of(r), sz.keys, geo.cmp_block, geo.cmp_stride) : int64_t{0};
  };
  const int64_t t_last = (t0 + shape.tokens < sz.seq ? t0 + shape.tokens : sz.seq) - 1;
  const int64_t vis_max = visible_cmp(t_last, sz.keys, geo.cmp_block, geo.cmp_stride);
  const int64_t n_kt = ceil_div(vis_max, kKeys);
  auto load_tile = [&](int64_t kt, int stage) {
    load_rows_async(
        ks + stage * kKeys * S::kLdK, S::kLdK, kKeys, DK, q,
        [&](int r) -> const bf16_t* {
          const int64_t i = kt * kKeys + r;
          return i < sz.keys ? kc + ((b * sz.keys + i) * sz.heads_kv + g) * DK : nullptr;
        },
        tid, kThreads);
  };
  if (n_kt > 0) load_tile(0, 0);
  cp_async_commit();
  __syncthreads();  // lse2, the ring and the lists are initialised (read before any tile when n_kt == 0)

  // This thread's accumulator rows r and r + 8 of the warp's 16.
  int row[2];
  int64_t vis[2];
  int64_t vis_warp_max = 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row[h] = warp * 16 + (lane >> 2) + 8 * h;
    vis[h] = visible(row[h]);
    vis_warp_max = vis[h] > vis_warp_max ? vis[h] : vis_warp_max;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const int64_t other = __shfl_xor_sync(0xffffffffu, vis_warp_max, o);
    vis_warp_max = other > vis_warp_max ? other : vis_warp_max;
  }

  int64_t j_done = 0;
  for (int64_t kt = 0; kt < n_kt; ++kt) {
    if (kt + 1 < n_kt) load_tile(kt + 1, (kt + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16_t* kst = ks + (kt & 1) * kKeys * S::kLdK;
    const int64_t i0 = kt * kKeys;
    float s[8][4] = {};
    if (i0 < vis_warp_max) {
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
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = row[h];
      const float row_lse = lse2[r];
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int col = nt * 8 + (lane & 3) * 2;
        const int64_t key = i0 + col;
        float2 p;
        p.x = key < vis[h] ? fast_exp2(s[nt][2 * h] * scale_log2 - row_lse) : 0.f;
        p.y = key + 1 < vis[h] ? fast_exp2(s[nt][2 * h + 1] * scale_log2 - row_lse) : 0.f;
        *reinterpret_cast<float2*>(ps + r * kPsLd + col) = p;
      }
    }
    __syncthreads();

    // Eq. 10 first: row tau·G of ps becomes the group's sum over its heads (in place, column by column).
    if (group > 1) {
      for (int idx = tid; idx < shape.tokens * kKeys; idx += kThreads) {
        float* col = ps + (idx / kKeys) * static_cast<int>(group) * kPsLd + idx % kKeys;
        float sum = 0.f;
        for (int h = 0; h < group; ++h) sum += col[h * kPsLd];
        col[0] = sum;
      }
      __syncthreads();
    }
    const int seg_l = static_cast<int>(geo.cmp_block / geo.cmp_stride);
    const int seg_p = static_cast<int>(geo.slc_block / geo.cmp_stride);
    const int64_t i_end = i0 + kKeys < vis_max ? i0 + kKeys : vis_max;
    const int64_t j_lo = i0 / seg_p;
    const int n_j = static_cast<int>((i_end - 1 + seg_l - 1) / seg_p - j_lo + 1);
    for (int item = tid; item < shape.tokens * n_j; item += kThreads) {
      const int tau = item / n_j;
      const int64_t j = j_lo + item % n_j;
      if (t0 + tau >= sz.seq) continue;
      const float sum = overlap_sum(ps + tau * static_cast<int>(group) * kPsLd, static_cast<int>(j),
                                    static_cast<int>(i0), static_cast<int>(i_end), seg_l, seg_p);
      ring[tau * shape.ring + (static_cast<int>(j) & (shape.ring - 1))] += sum;
    }
    __syncthreads();
    if (kt + 1 < n_kt) {
      // Block j is final once its last compressed block (j+1)·l'/d − 1 is below the next tile.
      const int64_t j_next = first_open_block(i0 + kKeys, geo, shape.by_slc);
      for (int tau = warp; tau < shape.tokens && t0 + tau < sz.seq; tau += kThreads / 32)
        merge_final(ring + tau * shape.ring, shape.ring, list_score + tau * kMaxFree,
                    list_block + tau * kMaxFree, t0 + tau, j_done, j_next, geo, shape.by_slc, lane);
      j_done = j_next;
      __syncthreads();
    }
  }
  cp_async_wait<0>();

  // The last blocks, then the output rows.
  for (int tau = warp; tau < shape.tokens; tau += kThreads / 32) {
    const int64_t t = t0 + tau;
    if (t >= sz.seq) break;
    merge_final(ring + tau * shape.ring, shape.ring, list_score + tau * kMaxFree, list_block + tau * kMaxFree,
                t, j_done, t / geo.slc_block + 1, geo, shape.by_slc, lane);
    __syncwarp();
    write_selection(indices + ((b * sz.seq + t) * sz.heads_kv + g) * geo.top_n, list_block + tau * kMaxFree,
                    t, geo, lane);
  }
}

// Warp-owned tokens (G a power of two <= 16): warp w holds rows 16w .. 16w + 15, i.e. tokens
// w·16/G .. (w+1)·16/G − 1 whole. Shared memory: Q, two K stages, and per token its group-summed
// probabilities of the current tile, its ring and its list.
template <int DK, int G, bool WG>
struct WarpSelectSmem {
  static constexpr int kLdK = DK + 8, kTokens = kRows / G;
  // The tiles: padded rows (mma.sync), or Q as two swizzled [64][DK] tiles then two swizzled K stages from a
  // 1024-byte boundary (wgmma).
  static constexpr uint32_t kQw = 64 * DK * 2, kKst = kKeys * DK * 2;
  static constexpr size_t kTiles =
      WG ? 2 * kQw + 2 * kKst : sizeof(bf16_t) * (kRows * kLdK + 2 * kKeys * kLdK);
  static constexpr size_t kFixed = (WG ? 1024 : 0) + kTiles + sizeof(float) * kTokens * kKeys +
                                   (sizeof(float) + sizeof(int)) * kTokens * kMaxFree;
  static size_t bytes(const SelectShape& s) { return kFixed + sizeof(float) * kTokens * s.ring; }
};

// WG: the score product on Hopper's wgmma (sm_90a, DK = 64 or 128): the two warpgroups' Q rows and the K
// stages sit in swizzled shared memory and S comes out in the mma.sync accumulator layout, so everything
// after it is the same code.
template <int DK, int G, bool WG, int CTAS = 2>
__global__ void __launch_bounds__(kThreads, CTAS)
    select_warp_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ kc,
                       const float* __restrict__ lse, int32_t* __restrict__ indices, NsaSizes sz,
                       NsaGeometry geo, float scale_log2, SelectShape shape) {
  using S = WarpSelectSmem<DK, G, WG>;
  constexpr int kTokWarp = 16 / G;  // tokens per warp
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = WG ? smem_raw + ((1024u - (smem_u32(smem_raw) & 1023u)) & 1023u) : smem_raw;
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);  // padded layout (mma.sync)
  bf16_t* ks = qs + kRows * S::kLdK;
  constexpr uint32_t kQw = S::kQw, kKst = S::kKst;  // swizzled layout (wgmma)
  unsigned char* ksw = smem + 2 * kQw;
  float* cs = reinterpret_cast<float*>(smem + S::kTiles);  // [tokens][kKeys]: Σ_heads p of the tile
  float* list_score = cs + S::kTokens * kKeys;             // [tokens][kMaxFree]
  int* list_block = reinterpret_cast<int*>(list_score + S::kTokens * kMaxFree);
  float* ring = reinterpret_cast<float*>(list_block + S::kTokens * kMaxFree);  // [tokens][ring]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t bg = blockIdx.y, b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t t0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * S::kTokens;  // latest first
  auto token_of = [&](int r) { return t0 + r / G; };
  auto row_valid = [&](int r) { return token_of(r) < sz.seq; };
  auto head_of = [&](int r) { return g * G + r % G; };

  auto q_row = [&](int r) -> const bf16_t* {
    return row_valid(r) ? q + ((b * sz.seq + token_of(r)) * sz.heads_q + head_of(r)) * DK : nullptr;
  };
  if constexpr (WG) {
    for (int w = 0; w < 2; ++w)
      load_rows_sw128<DK>(
          smem + w * kQw, 64, q, [&](int r) { return q_row(64 * w + r); }, tid, kThreads);
  } else {
    load_rows_async(qs, S::kLdK, kRows, DK, q, q_row, tid, kThreads);
  }
  cp_async_commit();
  for (int i = tid; i < S::kTokens * shape.ring; i += kThreads) ring[i] = 0.f;
  for (int i = tid; i < S::kTokens * kMaxFree; i += kThreads) {
    list_score[i] = -INFINITY;
    list_block[i] = -1;
  }

  const int64_t t_last = (t0 + S::kTokens < sz.seq ? t0 + S::kTokens : sz.seq) - 1;
  const int64_t vis_max = visible_cmp(t_last, sz.keys, geo.cmp_block, geo.cmp_stride);
  const int64_t n_kt = ceil_div(vis_max, kKeys);
  const bf16_t* kc_head = kc + (b * sz.keys * sz.heads_kv + g) * DK;  // key 0 of (b, g)
  auto load_tile = [&](int64_t kt, int stage) {
    if constexpr (WG) {
      // One 16-byte column chunk of every 16th row per thread, no division (the kernel is issue-bound).
      copy_rows_sw128<DK, kKeys, kThreads>(ksw + stage * kKst, kc_head, sz.heads_kv * DK, kt * kKeys, sz.keys,
                                           q, tid);
    } else {
      auto k_row = [&](int r) -> const bf16_t* {
        const int64_t i = kt * kKeys + r;
        return i < sz.keys ? kc_head + i * sz.heads_kv * DK : nullptr;
      };
      load_rows_async(ks + stage * kKeys * S::kLdK, S::kLdK, kKeys, DK, q, k_row, tid, kThreads);
    }
  };
  if (n_kt > 0) load_tile(0, 0);
  cp_async_commit();

  // This thread's accumulator rows r and r + 8 of the warp's 16: visible keys and lse (log2 units).
  int vis[2];
  float lse2[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + (lane >> 2) + 8 * h;
    const bool valid = row_valid(r);
    vis[h] = valid ? static_cast<int>(visible_cmp(token_of(r), sz.keys, geo.cmp_block, geo.cmp_stride)) : 0;
    lse2[h] = valid ? lse[(b * sz.heads_q + head_of(r)) * sz.seq + token_of(r)] * kLog2e : 0.f;
  }
  int vis_warp_max = vis[0] > vis[1] ? vis[0] : vis[1], vis_warp_min = vis[0] < vis[1] ? vis[0] : vis[1];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    vis_warp_max = max(vis_warp_max, __shfl_xor_sync(0xffffffffu, vis_warp_max, o));
    vis_warp_min = min(vis_warp_min, __shfl_xor_sync(0xffffffffu, vis_warp_min, o));
  }
  // wgmma runs warpgroup-wide: the warpgroup's last row sees the most keys (rows ascend in t).
  const int r_wg_last = (warp >> 2) * 64 + 63;
  const int vis_wg_max =
      row_valid(r_wg_last)
          ? static_cast<int>(visible_cmp(token_of(r_wg_last), sz.keys, geo.cmp_block, geo.cmp_stride))
          : static_cast<int>(vis_max);
  const int tau0 = warp * kTokWarp;  // the warp's first token (program-relative)
  const int my_tokens = static_cast<int>(t0 + tau0 >= sz.seq               ? 0
                                         : sz.seq - (t0 + tau0) < kTokWarp ? sz.seq - (t0 + tau0)
                                                                           : kTokWarp);
  const int seg_l = static_cast<int>(geo.cmp_block / geo.cmp_stride);
  const int seg_p = static_cast<int>(geo.slc_block / geo.cmp_stride);
  __syncthreads();  // the ring and the lists are initialised (read before any tile when n_kt == 0)

  // Descriptors of k-step 0 of this warpgroup's Q tile and of the first K stage (advanced per use).
  [[maybe_unused]] uint64_t q_desc0 = 0, k_desc0 = 0;
  if constexpr (WG) {
    q_desc0 = desc_k_major(smem_u32(smem + (warp >> 2) * kQw), 64, 0);
    k_desc0 = desc_k_major(smem_u32(ksw), kKeys, 0);
  }

  int64_t j_done = 0;
  for (int64_t kt = 0; kt < n_kt; ++kt) {
    // One barrier per tile: tile kt has arrived for everyone, and every warp is done with tile kt − 1, whose
    // stage the next load overwrites.
    cp_async_wait<0>();
    if constexpr (WG) fence_proxy_async();  // the tile's cp.async writes, before wgmma reads them
    __syncthreads();
    if (kt + 1 < n_kt) load_tile(kt + 1, (kt + 1) & 1);
    cp_async_commit();
    const int i0 = static_cast<int>(kt) * kKeys;
    float s[8][4] = {};
    if constexpr (WG) {
      if (i0 < vis_wg_max) {  // warpgroup-uniform
        float(&sf)[32] = reinterpret_cast<float(&)[32]>(s);
        const uint64_t kd = desc_advance(k_desc0, (kt & 1) * kKst);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < DK / 16; ++kk)
          wgmma_ss_n64(sf, desc_k_step(q_desc0, 64, kk), desc_k_step(kd, kKeys, kk), kk > 0);
        wg_commit();
        wg_wait<0>();
        wg_hold(sf);
      }
    } else if (i0 < vis_warp_max) {
      const bf16_t* kst = ks + (kt & 1) * kKeys * S::kLdK;
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
    }
    if (i0 + kKeys <= vis_warp_min) {  // every row of the warp sees the whole tile: no mask
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] = fast_exp2(fmaf(s[nt][e], scale_log2, -lse2[e >> 1]));
    } else {
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int key = i0 + nt * 8 + (lane & 3) * 2;
#pragma unroll
        for (int e = 0; e < 4; ++e)
          s[nt][e] = key + (e & 1) < vis[e >> 1] ? fast_exp2(fmaf(s[nt][e], scale_log2, -lse2[e >> 1])) : 0.f;
      }
    }
    // Eq. 10: sum the rows of one token, which are G consecutive fragment rows (quad rows differ in lane
    // bits 2..4; with G = 16 the two halves r and r + 8 belong to the same token too).
    if constexpr (G == 16) {
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        s[nt][0] += s[nt][2];
        s[nt][1] += s[nt][3];
      }
    }
#pragma unroll
    for (int off = 4; off < 4 * (G < 8 ? G : 8); off *= 2)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < (G == 16 ? 2 : 4); ++e) s[nt][e] += __shfl_xor_sync(0xffffffffu, s[nt][e], off);
    if (((lane >> 2) & (G == 16 ? 7 : G - 1)) == 0) {
#pragma unroll
      for (int h = 0; h < (G == 16 ? 1 : 2); ++h) {
        float* crow = cs + (tau0 + ((lane >> 2) + 8 * h) / G) * kKeys + (lane & 3) * 2;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
          *reinterpret_cast<float2*>(crow + nt * 8) = make_float2(s[nt][2 * h], s[nt][2 * h + 1]);
      }
    }
    __syncwarp();
    // Eq. 9: the selection blocks this tile touches, one lane each.
    const int i_end = i0 + kKeys < vis_max ? i0 + kKeys : static_cast<int>(vis_max);
    const int j_lo = shape.by_seg.div(i0);
    const int n_j = shape.by_seg.div(i_end - 1 + seg_l - 1) - j_lo + 1;
    for (int item = lane; item < n_j; item += 32) {
      const int j = j_lo + item, slot = j & (shape.ring - 1);
      for (int tl = 0; tl < my_tokens; ++tl)
        ring[(tau0 + tl) * shape.ring + slot] +=
            overlap_sum(cs + (tau0 + tl) * kKeys, j, i0, i_end, seg_l, seg_p);
    }
    __syncwarp();
    if (kt + 1 < n_kt) {
      const int64_t j_next = first_open_block(i0 + kKeys, geo, shape.by_slc);
      for (int tl = 0; tl < my_tokens; ++tl) {
        const int tau = tau0 + tl;
        merge_final(ring + tau * shape.ring, shape.ring, list_score + tau * kMaxFree,
                    list_block + tau * kMaxFree, t0 + tau, j_done, j_next, geo, shape.by_slc, lane);
      }
      j_done = j_next;
    }
  }
  cp_async_wait<0>();
  __syncwarp();

  // The last blocks, then the output rows.
  for (int tl = 0; tl < my_tokens; ++tl) {
    const int tau = tau0 + tl;
    const int64_t t = t0 + tau;
    merge_final(ring + tau * shape.ring, shape.ring, list_score + tau * kMaxFree, list_block + tau * kMaxFree,
                t, j_done, t / geo.slc_block + 1, geo, shape.by_slc, lane);
    __syncwarp();
    write_selection(indices + ((b * sz.seq + t) * sz.heads_kv + g) * geo.top_n, list_block + tau * kMaxFree,
                    t, geo, lane);
  }
}

bool tensor_core_path(const NsaSelectParams& p) {
  const int64_t group = p.sz.heads_q / p.sz.heads_kv;
  return p.dtype == ScalarType::bf16 && (p.sz.dim_k == 64 || p.sz.dim_k == 128 || p.sz.dim_k == 192) &&
         group <= kRows && p.geo.top_n <= kMaxFree && aligned16({p.q, p.kc});
}

}  // namespace
}  // namespace nsa::kernels::nsa_impl

namespace nsa::kernels {
using namespace nsa_impl;

size_t nsa_select_workspace(const NsaSelectParams& p) {
  return tensor_core_path(p) ? 0 : simt_select_scratch(p);
}

Status launch_nsa_select(const NsaSelectParams& p, cudaStream_t stream) {
  if (!tensor_core_path(p)) return simt_select(p, p.workspace, stream);
  const SelectShape shape = select_shape(p.sz, p.geo);
  const float scale_log2 = static_cast<float>(p.scale) * kLog2e;
  const int64_t group = p.sz.heads_q / p.sz.heads_kv;
  const bool warp_tokens = group <= 16 && (group & (group - 1)) == 0;
  const unsigned programs =
      static_cast<unsigned>(ceil_div(p.sz.seq, warp_tokens ? kRows / group : shape.tokens));
  const dim3 grid(programs, static_cast<unsigned>(p.sz.batch * p.sz.heads_kv));
  Status st{};
  auto launch = [&](auto kernel, size_t bytes) {
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (e != cudaSuccess) {
      st = {e, nullptr};
      return;
    }
    kernel<<<grid, kThreads, bytes, stream>>>(
        static_cast<const bf16_t*>(p.q), static_cast<const bf16_t*>(p.kc), static_cast<const float*>(p.lse),
        p.indices, p.sz, p.geo, scale_log2, shape);
    st = last_launch();
  };
  // The score product on wgmma, three programs per SM (80 registers: S no longer needs Q fragments or
  // ldmatrix addresses, and the swizzled tiles need no padding). Same-run H100 (2026-11-23), 64k / 8k:
  // mma.sync 16.9 / 0.43 ms; wgmma with two programs per SM 14.5 / 0.42 ms; with three 13.3 / 0.35 ms.
  // Resident warps pay; with three programs ncu had 70% of the issue slots busy, so instructions per tile
  // are what count now (copy, descriptors and divisions cut: 13.35 → 10.72 ms at 64k).
  const bool wg = p.sz.dim_k != 192 && wgmma_available();
  auto run = [&]<int DK>() {
    auto warp_kernel = [&]<int G>() {
      if constexpr (DK != 192) {
        if (wg) return launch(select_warp_kernel<DK, G, true, 3>, WarpSelectSmem<DK, G, true>::bytes(shape));
      }
      return launch(select_warp_kernel<DK, G, false>, WarpSelectSmem<DK, G, false>::bytes(shape));
    };
    switch (warp_tokens ? group : 0) {
      case 1:
        return warp_kernel.template operator()<1>();
      case 2:
        return warp_kernel.template operator()<2>();
      case 4:
        return warp_kernel.template operator()<4>();
      case 8:
        return warp_kernel.template operator()<8>();
      case 16:
        return warp_kernel.template operator()<16>();
      default:
        return launch(select_kernel<DK>, SelectSmem<DK>::bytes(shape));
    }
  };
  if (p.sz.dim_k == 64) {
    run.template operator()<64>();
  } else if (p.sz.dim_k == 128) {
    run.template operator()<128>();
  } else {
    run.template operator()<192>();
  }
  return st;
}

}  // namespace nsa::kernels
