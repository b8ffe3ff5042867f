// Selected attention (paper eq. 12), the group-centric kernels of §3.4, on tensor cores (bf16 in, f32
// accumulation), with the CUDA-core path for everything else.
//
// forward, dQ  one program per (b, t, KV head): the G query heads of the group form the M side of the
//              products (padded to 16 rows, kept in registers), and the selected blocks are cut into
//              16-key sub-tiles. The program streams them four at a time (one per warp) through a ring of
//              64-key stages: each row of K and V is one bulk copy (cp.async.bulk, sm_90; cp.async before)
//              whose bytes complete the stage's mbarrier. Each warp keeps its own online softmax; the 4
//              partial states are combined in shared memory at the end in a fixed order. Every program does
//              the same amount of work (n blocks of l' keys), so the grid needs no balancing. The forward
//              and dQ run three programs per SM with two stages (dQ parks Q and dO in the second stage until
//              they are in registers).
// dK/dV        key-block-outer over the inverse index (nsa_inverse_index.cu): one program per selection
//              block and chunk of the tokens that chose it. 4 warps of 16 keys hold the block's K/V in shared
//              memory and walk the (token, head) rows 16 at a time: Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, dV += Pᵀ·dO,
//              dK += dSᵀ·Q. Lists longer than one chunk (block 0, which every token selects, and popular
//              blocks) write f32 partials that a second kernel adds in chunk order: deterministic, no
//              atomics. On Hopper (sm_90a build, head dims (64, 64) or (128, 128)) the same work items run
//              on wgmma instead (slc_dkdv_wgmma_kernel): one warpgroup per 64 keys, Sᵀ/dPᵀ with both operands
//              in swizzled shared memory, the gathered Q/dO rows of the stage after next prefetched into L2
//              (the kernel is bound by reading those rows from HBM).
#include <algorithm>
#include <atomic>
#include <cub/device/device_scan.cuh>

#include "kernels/nsa/nsa_device.cuh"
#include "kernels/nsa/nsa_internal.h"

namespace nsa::kernels::nsa_impl {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = 4;
constexpr int kSub = 16;       // keys per sub-tile
constexpr int kMaxGroup = 16;  // query heads per KV head on the tensor-core path (one m16 tile)

// Shared memory of the forward / dQ program: Q and dO rows, a ring of stages of 64 keys (four 16-key
// sub-tiles of the list, one per warp) of K then V rows, one mbarrier per stage, the sub-tile list.
template <int DK, int DV, bool kGrad, int STAGES>
struct QuerySmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr int kStageKeys = kWarps * kSub;
  static constexpr int kStages = STAGES;
  static constexpr size_t kQ = sizeof(bf16_t) * kMaxGroup * (kLdK + (kGrad ? kLdV : 0));  // q (and dO) rows
  static constexpr size_t kStage = sizeof(bf16_t) * kStageKeys * (kLdK + kLdV);
  static constexpr size_t kRing = kStages * kStage;
  // dQ with two stages keeps Q and dO in the last stage until they are in registers, so that three programs
  // fit on an SM (75 KB each at D = 128); that stage is filled only after.
  static constexpr bool kOverlay = kGrad && STAGES == 2;
  static constexpr size_t kQRegion = kOverlay ? 0 : kQ;
  static_assert(kQ <= kStage, "Q and dO fit in one stage");
  static constexpr size_t kCombine = sizeof(float) * kWarps * kMaxGroup * ((DK > DV ? DK : DV) + 2);
  static_assert(kCombine <= kRing, "the combine buffer reuses the stages");
  static_assert(kQ % 16 == 0 && kStage % 16 == 0, "bulk copies need 16-byte aligned rows");
  static size_t bytes(int64_t max_subs) {
    return kQRegion + kRing + sizeof(uint64_t) * kStages + sizeof(int) * (max_subs + 1);
  }
};

// The 16-key sub-tiles query t reads: for each valid selected block j (j·l' <= t), its sub-tiles starting at
// or before t. Written by warp 0 into subs[], count into subs[max]; returns after a block barrier.
template <class I>
__device__ void build_sub_tiles(int* subs, int64_t max_subs, const I* row, int64_t n, int64_t t,
                                int64_t n_slc, int64_t block, unsigned* flag) {
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    int count = 0;
    for (int64_t base = 0; base < n; base += 32) {
      const int64_t slot = base + lane;
      int64_t j = slot < n ? static_cast<int64_t>(row[slot]) : -1;
      if (j < -1 || j >= n_slc) {
        if (flag) atomicOr(flag, kIndexOutOfRange);
        j = -1;
      }
      int mine = 0;
      if (j >= 0 && j * block <= t) {
        const int64_t end = (j + 1) * block < t + 1 ? (j + 1) * block : t + 1;
        mine = static_cast<int>(ceil_div(end - j * block, kSub));
      }
      int incl = mine;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int other = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += other;
      }
      for (int s = 0; s < mine; ++s) subs[count + incl - mine + s] = static_cast<int>(j * block + s * kSub);
      count += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0) subs[max_subs] = count;
  }
  __syncthreads();
}

// One warp's 16 × 16 product s = A·Bᵀ over a head dim of D: A's k-steps in registers, B's 16 rows in a padded
// tile with leading dimension ld. Alternate k-steps go to two accumulator pairs (four independent mma chains
// instead of two: the kernel is bound by the latency of this chain), summed at the end.
template <int D>
__device__ __forceinline__ void product_16x16(float (&s)[2][4], const uint32_t (&a)[D / 16][4],
                                              const bf16_t* tile, int ld, int lane) {
  float even[2][4] = {}, odd[2][4] = {};
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t bb[4];
    ldsm_x4(bb, bn_addr(tile, ld, 0, kk * 16, lane));
    float(&acc)[2][4] = kk & 1 ? odd : even;
    mma_bf16(acc[0], a[kk], bb[0], bb[1]);
    mma_bf16(acc[1], a[kk], bb[2], bb[3]);
  }
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) s[nt][e] = even[nt][e] + odd[nt][e];
}

// acc (16 × D) += P·B for one warp: P the 16 × 16 accumulator s rounded to bf16 (the A operand), B the tile's
// 16 rows × D columns (transposed ldmatrix).
template <int D>
__device__ __forceinline__ void accumulate_16xd(float (&acc)[D / 8][4], const float (&s)[2][4],
                                                const bf16_t* tile, int ld, int lane) {
  uint32_t a[4];
  acc_to_a(a, s[0], s[1]);
#pragma unroll
  for (int np = 0; np < D / 16; ++np) {
    uint32_t bb[4];
    ldsm_x4_t(bb, bk_addr(tile, ld, 0, np * 16, lane));
    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
  }
}

// Forward (with_grad = false) or dQ (true) of one (b, t, g).
template <int DK, int DV, bool kGrad, class I, int STAGES, int CTAS>
__global__ void __launch_bounds__(kThreads, CTAS)
    slc_query_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                     const I* __restrict__ indices, int64_t n_idx, const bf16_t* __restrict__ dout,
                     const float* __restrict__ lse_in, const float* __restrict__ delta,
                     bf16_t* __restrict__ out, float* __restrict__ lse_out, NsaSizes sz, NsaGeometry geo,
                     float scale_log2, float scale, int64_t max_subs, unsigned* flag) {
  using S = QuerySmem<DK, DV, kGrad, STAGES>;
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* ring = smem + S::kQRegion;
  bf16_t* qs = reinterpret_cast<bf16_t*>(S::kOverlay ? ring + (S::kStages - 1) * S::kStage : smem);
  bf16_t* dos = qs + kMaxGroup * S::kLdK;                         // dQ only
  uint64_t* full = reinterpret_cast<uint64_t*>(ring + S::kRing);  // [kStages]
  int* subs = reinterpret_cast<int*>(full + S::kStages);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t t = blockIdx.x, bg = blockIdx.y, b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t group = sz.heads_q / sz.heads_kv;
  const int64_t q_row0 = (b * sz.seq + t) * sz.heads_q + g * group;  // row of head 0 of the group

  load_rows_async(
      qs, S::kLdK, kMaxGroup, DK, q, [&](int r) { return r < group ? q + (q_row0 + r) * DK : nullptr; }, tid,
      kThreads);
  if constexpr (kGrad)
    load_rows_async(
        dos, S::kLdV, kMaxGroup, DV, q, [&](int r) { return r < group ? dout + (q_row0 + r) * DV : nullptr; },
        tid, kThreads);
  cp_async_commit();
  if (tid == 0) {
    for (int st = 0; st < S::kStages; ++st) mbar_init(full + st, 1);
    mbar_init_fence();
  }
  build_sub_tiles(subs, max_subs, indices + ((b * sz.seq + t) * sz.heads_kv + g) * n_idx, n_idx, t,
                  ceil_div(sz.seq, geo.slc_block), geo.slc_block, flag);  // ends with a block barrier
  const int count = subs[max_subs];
  const int n_it = (count + kWarps - 1) / kWarps;  // stages to stream, four sub-tiles each

  // Stage `it` holds sub-tiles 4·it .. 4·it + 3 (the last may hold fewer): thread r < 64 brings key row r of
  // it, thread 64 + r value row r. Rows past the sequence repeat its last row (finite values, always masked:
  // a key past T is past t).
  const bool is_v = tid >= S::kStageKeys;
  const int rr = tid & (S::kStageKeys - 1);
  auto stage_k = [&](int it) { return reinterpret_cast<bf16_t*>(ring + (it % S::kStages) * S::kStage); };
  auto stage_v = [&](int it) { return stage_k(it) + S::kStageKeys * S::kLdK; };
  auto issue = [&](int it) {
    const int e = it * kWarps + rr / kSub;
    if (e < count) {
      int64_t key = subs[e] + (rr % kSub);
      key = key < sz.seq ? key : sz.seq - 1;
      const bf16_t* src = is_v ? v + ((b * sz.seq + key) * sz.heads_kv + g) * DV
                               : k + ((b * sz.seq + key) * sz.heads_kv + g) * DK;
      bf16_t* dst = is_v ? stage_v(it) + rr * S::kLdV : stage_k(it) + rr * S::kLdK;
#ifdef NSA_BULK_DEVICE
      if (tid == 0) {
        const int subs_here = count - it * kWarps < kWarps ? count - it * kWarps : kWarps;
        mbar_arrive_expect(full + it % S::kStages,
                           static_cast<uint32_t>(subs_here * kSub * (DK + DV) * sizeof(bf16_t)));
      }
      fence_proxy_async();  // this thread's earlier reads of the stage come before the copy overwrites it
      bulk_copy(dst, src, (is_v ? DV : DK) * sizeof(bf16_t), full + it % S::kStages);
#else
      for (int c = 0; c < (is_v ? DV : DK) / 8; ++c) cp_async16(dst + c * 8, src + c * 8, true);
#endif
    }
#ifndef NSA_BULK_DEVICE
    cp_async_commit();
#endif
  };
  constexpr int kEarly = S::kStages - (S::kOverlay ? 1 : 0);  // stages issued before Q is in registers
  auto issue_or_pad = [&](int it) {
    if (it < n_it) {
      issue(it);
    } else {
#ifndef NSA_BULK_DEVICE
      cp_async_commit();  // keep one group per stage for the waits
#endif
    }
  };
  for (int it = 0; it < kEarly; ++it) issue_or_pad(it);
#ifdef NSA_BULK_DEVICE
  cp_async_wait<0>();  // Q and dO (the only cp.async group)
#else
  cp_async_wait<kEarly>();  // Q and dO (the first group; the stages follow)
#endif
  __syncthreads();

  uint32_t qa[DK / 16][4];
#pragma unroll
  for (int kk = 0; kk < DK / 16; ++kk) ldsm_x4(qa[kk], a_addr(qs, S::kLdK, 0, kk * 16, lane));
  [[maybe_unused]] uint32_t da[kGrad ? DV / 16 : 1][4];
  const int ra = lane >> 2, rb = ra + 8;
  [[maybe_unused]] float lse_a = 0.f, lse_b = 0.f, dl_a = 0.f, dl_b = 0.f;
  if constexpr (kGrad) {
#pragma unroll
    for (int kk = 0; kk < DV / 16; ++kk) ldsm_x4(da[kk], a_addr(dos, S::kLdV, 0, kk * 16, lane));
    auto stat = [&](int r) { return (b * sz.heads_q + g * group + r) * sz.seq + t; };
    if (ra < group) lse_a = lse_in[stat(ra)] * kLog2e, dl_a = delta[stat(ra)];
    if (rb < group) lse_b = lse_in[stat(rb)] * kLog2e, dl_b = delta[stat(rb)];
  }
  if constexpr (S::kOverlay) {
    __syncthreads();  // Q and dO are in every warp's registers: their stage can be filled
    issue_or_pad(S::kStages - 1);
  }

  constexpr int kAcc = kGrad ? DK / 8 : DV / 8;
  float acc[kAcc][4] = {};
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
  for (int it = 0; it < n_it; ++it) {
#ifdef NSA_BULK_DEVICE
    mbar_wait(full + it % S::kStages, static_cast<uint32_t>((it / S::kStages) & 1));
#else
    cp_async_wait<S::kStages - 1>();
    __syncthreads();
#endif
    const int e = it * kWarps + warp;
    if (e < count) {
      const bf16_t* kst = stage_k(it) + warp * kSub * S::kLdK;
      const bf16_t* vst = stage_v(it) + warp * kSub * S::kLdV;
      const int64_t key0 = subs[e];
      float s[2][4];
      product_16x16<DK>(s, qa, kst, S::kLdK, lane);
      if constexpr (!kGrad) {
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int e2 = 0; e2 < 4; ++e2) {
            const int64_t key = key0 + nt * 8 + (lane & 3) * 2 + (e2 & 1);
            s[nt][e2] = key <= t ? s[nt][e2] * scale_log2 : -INFINITY;
          }
          mx_a = fmaxf(mx_a, fmaxf(s[nt][0], s[nt][1]));
          mx_b = fmaxf(mx_b, fmaxf(s[nt][2], s[nt][3]));
        }
        rescale_rows(reinterpret_cast<float(&)[kAcc * 4]>(acc),
                     online_softmax_step(s, mx_a, mx_b, m_a, m_b, l_a, l_b));
        accumulate_16xd<DV>(acc, s, vst, S::kLdV, lane);  // O += P·V
      } else {
        float dp[2][4];
        product_16x16<DV>(dp, da, vst, S::kLdV, lane);
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int e2 = 0; e2 < 4; ++e2) {
            const int64_t key = key0 + nt * 8 + (lane & 3) * 2 + (e2 & 1);
            const float p = key <= t ? fast_exp2(s[nt][e2] * scale_log2 - (e2 < 2 ? lse_a : lse_b)) : 0.f;
            s[nt][e2] = p * (dp[nt][e2] - (e2 < 2 ? dl_a : dl_b));  // dS
          }
        }
        accumulate_16xd<DK>(acc, s, kst, S::kLdK, lane);  // dQ += dS·K
      }
    }
    __syncthreads();  // every warp is done with this stage
    if (it + S::kStages < n_it) {
      issue(it + S::kStages);
    } else {
#ifndef NSA_BULK_DEVICE
      cp_async_commit();
#endif
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with its stages: reuse them for the combine

  constexpr int kCols = kGrad ? DK : DV;
  float* comb = reinterpret_cast<float*>(ring);  // [kWarps][kMaxGroup][kCols]
  float* comb_m = comb + kWarps * kMaxGroup * kCols;
  float* comb_l = comb_m + kWarps * kMaxGroup;
  l_a = quad_sum(l_a);
  l_b = quad_sum(l_b);
#pragma unroll
  for (int nt = 0; nt < kAcc; ++nt) {
    const int col = nt * 8 + (lane & 3) * 2;
    *reinterpret_cast<float2*>(comb + (warp * kMaxGroup + ra) * kCols + col) =
        make_float2(acc[nt][0], acc[nt][1]);
    *reinterpret_cast<float2*>(comb + (warp * kMaxGroup + rb) * kCols + col) =
        make_float2(acc[nt][2], acc[nt][3]);
  }
  if ((lane & 3) == 0) {
    comb_m[warp * kMaxGroup + ra] = m_a;
    comb_m[warp * kMaxGroup + rb] = m_b;
    comb_l[warp * kMaxGroup + ra] = l_a;
    comb_l[warp * kMaxGroup + rb] = l_b;
  }
  __syncthreads();
  for (int idx = tid; idx < group * kCols; idx += kThreads) {
    const int r = idx / kCols, col = idx % kCols;
    if constexpr (kGrad) {
      float sum = 0.f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) sum += comb[(w * kMaxGroup + r) * kCols + col];
      out[(q_row0 + r) * DK + col] = __float2bfloat16_rn(sum * scale);
    } else {
      float m = -INFINITY;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) m = fmaxf(m, comb_m[w * kMaxGroup + r]);
      float l = 0.f, o = 0.f;
      if (m != -INFINITY) {
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
          const float f = exp2f(comb_m[w * kMaxGroup + r] - m);
          l += comb_l[w * kMaxGroup + r] * f;
          o += comb[(w * kMaxGroup + r) * kCols + col] * f;
        }
      }
      out[(q_row0 + r) * DV + col] = __float2bfloat16_rn(l > 0.f ? o / l : 0.f);
      if (col == 0)
        lse_out[(b * sz.heads_q + g * group + r) * sz.seq + t] = l > 0.f ? (m + log2f(l)) * kLn2 : -INFINITY;
    }
  }
}

// ---- dK/dV ----------------------------------------------------------------------------------------

constexpr int kRowTile = 16;    // (token, head) rows per product step
constexpr int kStageRows = 64;  // rows per loaded stage: four product steps per barrier
constexpr int kPassKeys = kWarps * kSub;

template <int DK, int DV>
struct KvSmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr size_t kTiles =
      sizeof(bf16_t) * (kPassKeys * (kLdK + kLdV) + 2 * kStageRows * (kLdK + kLdV));
  static constexpr size_t kBytes = kTiles + 2 * kStageRows * (2 * sizeof(float) + sizeof(int));
};

struct SlcItems {
  const int* row_start;    // [X + 1] (inverse index)
  const uint64_t* sorted;  // inverse index keys
  const int* slots;        // each key's slot in its token's selection (dQ partials only, else null)
  const int* n_chunks;     // [X + 1]
  const int* item_start;   // [X + 1]
  const int* slot_start;   // [X + 1]
  const int2* items;       // (list, chunk)
  int64_t lists, chunk_entries;
};

template <int DK, int DV>
__global__ void __launch_bounds__(kThreads, 2)
    slc_dkdv_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q,
                    const bf16_t* __restrict__ k, const bf16_t* __restrict__ v, const float* __restrict__ lse,
                    const float* __restrict__ delta, bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                    float* __restrict__ partial, NsaSizes sz, NsaGeometry geo, float scale_log2, float scale,
                    SlcItems plan) {
  using S = KvSmem<DK, DV>;
  if (blockIdx.x >= plan.item_start[plan.lists]) return;
  const int2 item = plan.items[blockIdx.x];
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* ks = reinterpret_cast<bf16_t*>(smem);
  bf16_t* vs = ks + kPassKeys * S::kLdK;
  bf16_t* qs = vs + kPassKeys * S::kLdV;  // [2][kStageRows][kLdK]
  bf16_t* dos = qs + 2 * kStageRows * S::kLdK;
  float* st_lse = reinterpret_cast<float*>(smem + S::kTiles);  // [2][kStageRows], log2 units
  float* st_delta = st_lse + 2 * kStageRows;
  int* st_token = reinterpret_cast<int*>(st_delta + 2 * kStageRows);  // −1: no row (T < 2^31)

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t bh = sz.batch * sz.heads_kv, x = item.x;
  const int64_t j = x / bh, bg = x % bh, b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t group = sz.heads_q / sz.heads_kv;
  const int64_t e_lo = plan.row_start[x] + static_cast<int64_t>(item.y) * plan.chunk_entries;
  const int64_t e_hi = std::min<int64_t>(e_lo + plan.chunk_entries, plan.row_start[x + 1]);
  const int64_t rows = (e_hi - e_lo) * group;
  const int64_t n_steps = ceil_div(rows, kStageRows);
  const bool direct = plan.n_chunks[x] == 1;
  float* part = partial + static_cast<int64_t>(plan.slot_start[x] + item.y) * geo.slc_block * (DK + DV);

  auto load_rows = [&](int64_t step) {
    const int st = step & 1;
    const int64_t r0 = step * kStageRows;
    auto where = [&](int r, int64_t& token, int64_t& head) {
      const int64_t rr = r0 + r;
      if (rr >= rows) return false;
      const uint32_t entry = static_cast<uint32_t>(rr) / static_cast<uint32_t>(group);
      token = static_cast<int64_t>(plan.sorted[e_lo + entry]) - x * sz.seq;  // keys are x·T + t
      head = g * group + (rr - static_cast<int64_t>(entry) * group);
      return true;
    };
    load_rows_async(
        qs + st * kStageRows * S::kLdK, S::kLdK, kStageRows, DK, q,
        [&](int r) -> const bf16_t* {
          int64_t token, head;
          return where(r, token, head) ? q + ((b * sz.seq + token) * sz.heads_q + head) * DK : nullptr;
        },
        tid, kThreads);
    load_rows_async(
        dos + st * kStageRows * S::kLdV, S::kLdV, kStageRows, DV, q,
        [&](int r) -> const bf16_t* {
          int64_t token, head;
          return where(r, token, head) ? dout + ((b * sz.seq + token) * sz.heads_q + head) * DV : nullptr;
        },
        tid, kThreads);
    if (tid < kStageRows) {
      int64_t token = -1, head = 0;
      const bool ok = where(tid, token, head);
      const int64_t stat = (b * sz.heads_q + head) * sz.seq + token;
      st_lse[st * kStageRows + tid] = ok ? lse[stat] * kLog2e : 0.f;
      st_delta[st * kStageRows + tid] = ok ? delta[stat] : 0.f;
      st_token[st * kStageRows + tid] = ok ? static_cast<int>(token) : -1;
    }
  };

  const int64_t block0 = j * geo.slc_block;
  for (int64_t pass = 0; pass * kPassKeys < geo.slc_block; ++pass) {
    const int64_t pass0 = block0 + pass * kPassKeys;
    const int64_t pass_keys = std::min<int64_t>(kPassKeys, geo.slc_block - pass * kPassKeys);
    auto key_row = [&](const bf16_t* base, int r, int dim) -> const bf16_t* {
      const int64_t s = pass0 + r;
      return r < pass_keys && s < sz.seq ? base + ((b * sz.seq + s) * sz.heads_kv + g) * dim : nullptr;
    };
    load_rows_async(
        ks, S::kLdK, kPassKeys, DK, q, [&](int r) { return key_row(k, r, DK); }, tid, kThreads);
    load_rows_async(
        vs, S::kLdV, kPassKeys, DV, q, [&](int r) { return key_row(v, r, DV); }, tid, kThreads);
    cp_async_commit();
    if (n_steps > 0) load_rows(0);
    cp_async_commit();

    const bool warp_active = warp * kSub < pass_keys && pass0 + warp * kSub < sz.seq;
    const int key_a = static_cast<int>(pass0) + warp * kSub + (lane >> 2), key_b = key_a + 8;
    float dka[DK / 8][4] = {}, dva[DV / 8][4] = {};
    for (int64_t step = 0; step < n_steps; ++step) {
      if (step + 1 < n_steps) load_rows(step + 1);
      cp_async_commit();
      cp_async_wait<1>();
      __syncthreads();
#pragma unroll 1
      for (int sub = 0; sub < kStageRows / kRowTile; ++sub) {
        const int row0 = (step & 1) * kStageRows + sub * kRowTile;  // in the stage buffers
        if (step * kStageRows + sub * kRowTile >= rows) break;
        const bf16_t* qst = qs + row0 * S::kLdK;
        const bf16_t* dost = dos + row0 * S::kLdV;
        if (warp_active) {
          float s[2][4] = {}, dp[2][4] = {};
#pragma unroll
          for (int kk = 0; kk < DK / 16; ++kk) {
            uint32_t a[4], bb[4];
            ldsm_x4(a, a_addr(ks, S::kLdK, warp * kSub, kk * 16, lane));
            ldsm_x4(bb, bn_addr(qst, S::kLdK, 0, kk * 16, lane));
            mma_bf16(s[0], a, bb[0], bb[1]);
            mma_bf16(s[1], a, bb[2], bb[3]);
          }
#pragma unroll
          for (int kk = 0; kk < DV / 16; ++kk) {
            uint32_t a[4], bb[4];
            ldsm_x4(a, a_addr(vs, S::kLdV, warp * kSub, kk * 16, lane));
            ldsm_x4(bb, bn_addr(dost, S::kLdV, 0, kk * 16, lane));
            mma_bf16(dp[0], a, bb[0], bb[1]);
            mma_bf16(dp[1], a, bb[2], bb[3]);
          }
#pragma unroll
          for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
            for (int e2 = 0; e2 < 4; ++e2) {
              const int col = row0 + nt * 8 + (lane & 3) * 2 + (e2 & 1);
              const int key = e2 < 2 ? key_a : key_b, token = st_token[col];
              const float p =
                  token >= 0 && key <= token ? fast_exp2(s[nt][e2] * scale_log2 - st_lse[col]) : 0.f;
              s[nt][e2] = p;
              dp[nt][e2] = p * (dp[nt][e2] - st_delta[col]);  // dSᵀ
            }
          }
          uint32_t a[4];
          acc_to_a(a, s[0], s[1]);
#pragma unroll
          for (int np = 0; np < DV / 16; ++np) {
            uint32_t bb[4];
            ldsm_x4_t(bb, bk_addr(dost, S::kLdV, 0, np * 16, lane));
            mma_bf16(dva[2 * np], a, bb[0], bb[1]);
            mma_bf16(dva[2 * np + 1], a, bb[2], bb[3]);
          }
          acc_to_a(a, dp[0], dp[1]);
#pragma unroll
          for (int np = 0; np < DK / 16; ++np) {
            uint32_t bb[4];
            ldsm_x4_t(bb, bk_addr(qst, S::kLdK, 0, np * 16, lane));
            mma_bf16(dka[2 * np], a, bb[0], bb[1]);
            mma_bf16(dka[2 * np + 1], a, bb[2], bb[3]);
          }
        }
      }
      __syncthreads();
    }
    cp_async_wait<0>();

    auto finish = [&](int64_t key, int half) {
      const int64_t local = key - block0;
      if (!warp_active || local >= geo.slc_block || key >= sz.seq) return;
      if (direct) {
        bf16_t* krow = dk + ((b * sz.seq + key) * sz.heads_kv + g) * DK;
        bf16_t* vrow = dv + ((b * sz.seq + key) * sz.heads_kv + g) * DV;
#pragma unroll
        for (int nt = 0; nt < DK / 8; ++nt)
          *reinterpret_cast<__nv_bfloat162*>(krow + nt * 8 + (lane & 3) * 2) =
              __floats2bfloat162_rn(dka[nt][2 * half] * scale, dka[nt][2 * half + 1] * scale);
#pragma unroll
        for (int nt = 0; nt < DV / 8; ++nt)
          *reinterpret_cast<__nv_bfloat162*>(vrow + nt * 8 + (lane & 3) * 2) =
              __floats2bfloat162_rn(dva[nt][2 * half], dva[nt][2 * half + 1]);
      } else {
        float* row = part + local * (DK + DV);
#pragma unroll
        for (int nt = 0; nt < DK / 8; ++nt)
          *reinterpret_cast<float2*>(row + nt * 8 + (lane & 3) * 2) =
              make_float2(dka[nt][2 * half] * scale, dka[nt][2 * half + 1] * scale);
#pragma unroll
        for (int nt = 0; nt < DV / 8; ++nt)
          *reinterpret_cast<float2*>(row + DK + nt * 8 + (lane & 3) * 2) =
              make_float2(dva[nt][2 * half], dva[nt][2 * half + 1]);
      }
    };
    finish(key_a, 0);
    finish(key_b, 1);
    __syncthreads();  // the next pass reloads the key tiles
  }
}

__global__ void slc_chunk_counts_kernel(const int* __restrict__ row_start, int* __restrict__ n_chunks,
                                        int* __restrict__ n_slots, int64_t lists, int64_t chunk_entries) {
  for (int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; x <= lists;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int chunks = 0;
    if (x < lists) {
      const int64_t len = row_start[x + 1] - row_start[x];
      chunks = len > chunk_entries ? static_cast<int>(ceil_div(len, chunk_entries)) : 1;
    }
    n_chunks[x] = chunks;
    n_slots[x] = chunks > 1 ? chunks : 0;
  }
}

__global__ void slc_items_kernel(const int* __restrict__ n_chunks, const int* __restrict__ item_start,
                                 int2* __restrict__ items, int64_t lists) {
  for (int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; x < lists;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x)
    for (int c = 0; c < n_chunks[x]; ++c) items[item_start[x] + c] = make_int2(static_cast<int>(x), c);
}

template <int DK, int DV>
__global__ void slc_reduce_kernel(const float* __restrict__ partial, bf16_t* __restrict__ dk,
                                  bf16_t* __restrict__ dv, NsaSizes sz, NsaGeometry geo, SlcItems plan) {
  const int64_t x = blockIdx.x;
  const int chunks = plan.n_chunks[x];
  if (chunks <= 1) return;
  const int64_t bh = sz.batch * sz.heads_kv, j = x / bh, bg = x % bh;
  const int64_t b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t stride = geo.slc_block * (DK + DV);
  const float* base = partial + static_cast<int64_t>(plan.slot_start[x]) * stride;
  for (int64_t idx = threadIdx.x; idx < stride; idx += blockDim.x) {
    const int64_t local = idx / (DK + DV), col = idx % (DK + DV), key = j * geo.slc_block + local;
    if (key >= sz.seq) continue;
    float sum = 0.f;
    for (int c = 0; c < chunks; ++c) sum += base[c * stride + idx];
    const int64_t row = (b * sz.seq + key) * sz.heads_kv + g;
    if (col < DK) {
      dk[row * DK + col] = __float2bfloat16_rn(sum);
    } else {
      dv[row * DV + col - DK] = __float2bfloat16_rn(sum);
    }
  }
}

// dQ from the dK/dV kernel's partials: dq[b, t, g·G + h] = scale · Σ_s dq_part[b, t, g, s, h] over the slots
// s the inverse index holds (a block index in range and visible, j·l' <= t), in slot order (deterministic).
// One program per (b, t, g), one 16-byte column chunk of the group's G·D outputs per thread step.
template <int D, class I>
__global__ void slc_dq_reduce_kernel(const bf16_t* __restrict__ dq_part, const I* __restrict__ indices,
                                     bf16_t* __restrict__ dq, NsaSizes sz, NsaGeometry geo, int64_t n_idx,
                                     float scale, bool accumulate) {
  extern __shared__ int slots[];  // [n_idx]: the slots to add, in order
  __shared__ int n_slots;
  const int64_t row = blockIdx.x;  // (b·T + t)·Hkv + g
  const int64_t t = (row / sz.heads_kv) % sz.seq, group = sz.heads_q / sz.heads_kv;
  const int64_t n_slc = ceil_div(sz.seq, geo.slc_block);
  const I* sel = indices + row * n_idx;
  if (threadIdx.x == 0) {
    int n = 0;
    for (int64_t sl = 0; sl < n_idx; ++sl) {
      const int64_t j = static_cast<int64_t>(sel[sl]);
      if (j >= 0 && j < n_slc && j * geo.slc_block <= t) slots[n++] = static_cast<int>(sl);
    }
    n_slots = n;
  }
  __syncthreads();
  const int n = n_slots;
  const int64_t width = group * D;  // the group's heads are adjacent in dq and in each slot
  const bf16_t* part = dq_part + row * n_idx * width;
  bf16_t* out = dq + row * width;
  for (int64_t c = threadIdx.x * 8; c < width; c += blockDim.x * 8) {
    float acc[8] = {};
    for (int i = 0; i < n; ++i) {
      const uint4 u = *reinterpret_cast<const uint4*>(part + slots[i] * width + c);
      const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __bfloat1622float2(h2[e]);
        acc[2 * e] += f.x;
        acc[2 * e + 1] += f.y;
      }
    }
    uint4 o = accumulate ? *reinterpret_cast<const uint4*>(out + c) : uint4{};  // dq += (accumulate)
    __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(&o);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 before = accumulate ? __bfloat1622float2(o2[e]) : make_float2(0.f, 0.f);
      o2[e] = __floats2bfloat162_rn(acc[2 * e] * scale + before.x, acc[2 * e + 1] * scale + before.y);
    }
    *reinterpret_cast<uint4*>(out + c) = o;
  }
}

// ---- dK/dV on Hopper (wgmma, sm_90a) -----------------------------------------------------------------
//
// The same work items as slc_dkdv_kernel, one warpgroup per program and two programs per SM, laid out like
// the compressed branch's wgmma dK/dV kernel (nsa_cmp.cu): the pass's 64 keys of K and V and a ring of two
// stages of 64 gathered (token, head) rows of Q and dO sit in shared memory with the 128-byte swizzle, and
// wgmma reads them from there: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (64 keys × 64 rows, two commit groups so P's
// exponentials overlap dPᵀ), then dV += Pᵀ·dO and dK += dSᵀ·Q (64 × D, Pᵀ and dSᵀ from registers). The
// rows are gathered through the inverse index; the tokens of a stage are fetched three stages ahead (a ring
// of four in shared memory, stored after the products), so no copy waits on the index load, and the rows two
// stages ahead are prefetched into L2: the kernel is bound by reading those rows from HBM (38 GB at 64k
// tokens), and the prefetch took it from 17.9 to 16.0 ms there (H100, 2026-11-23).
constexpr int kWgKeys = 64;    // keys per pass: one warpgroup, 16 per warp
constexpr int kWgRows = 64;    // (token, head) rows per stage
constexpr int kWgStages = 2;   // shared-memory stages of Q/dO rows
constexpr int kTokenRing = 4;  // stages whose tokens are known: computing, loading, prefetched, fetched

template <int D, bool DQ>
struct WgKvSmem {
  static constexpr uint32_t kK = kWgKeys * D * 2;  // the pass's K tile; V follows
  static constexpr uint32_t kQ = kWgRows * D * 2, kStage = 2 * kQ;
  static constexpr uint32_t kDs = DQ ? kWgKeys * kWgRows * 2 : 0;        // the stage's dSᵀ (bf16) for dQ
  static constexpr uint32_t kTiles = 2 * kK + kWgStages * kStage + kDs;  // each a multiple of 1024 bytes
  static constexpr int kRings = DQ ? 2 : 1;                              // tokens (and slots)
  static constexpr size_t kBytes =
      1024 + kTiles + kWgStages * kWgRows * 2 * sizeof(float) + kRings * kTokenRing * kWgRows * sizeof(int);
};

[[maybe_unused]] __device__ __forceinline__ unsigned char* align_1024(unsigned char* p) {
  return p + ((1024u - (smem_u32(p) & 1023u)) & 1023u);
}

// DQ: also the dQ partials of the stage's rows, dQ_part = dS·K over this pass's keys (A = dSᵀ written to
// shared memory as bf16 and read MN-major, B = the K tile read MN-major), stored in bf16 at the entry's slot
// s (the inverse index carries it) in dq_part [B, T, Hkv, n_idx, G, D], through the stage's Q tile so that
// each token's G rows go out as one contiguous run; a reduce kernel adds a token's slots in slot order. Only
// for selection blocks of at most kWgKeys keys (one pass).
template <int D, bool DQ>
__global__ void __launch_bounds__(kThreads, 2)
    slc_dkdv_wgmma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q,
                          const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                          const float* __restrict__ lse, const float* __restrict__ delta,
                          bf16_t* __restrict__ dk, bf16_t* __restrict__ dv, float* __restrict__ partial,
                          int64_t n_idx, bf16_t* __restrict__ dq_part, NsaSizes sz, NsaGeometry geo,
                          float scale_log2, float scale, SlcItems plan) {
#ifdef NSA_WGMMA_DEVICE
  using S = WgKvSmem<D, DQ>;
  if (blockIdx.x >= plan.item_start[plan.lists]) return;
  const int2 item = plan.items[blockIdx.x];
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* smem = align_1024(smem_raw);
  unsigned char* stages = smem + 2 * S::kK;
  float* st_lse = reinterpret_cast<float*>(smem + S::kTiles);  // [kWgStages][kWgRows]
  float* st_delta = st_lse + kWgStages * kWgRows;
  int* st_token = reinterpret_cast<int*>(st_delta + kWgStages * kWgRows);  // [kTokenRing][kWgRows], −1: none
  int* st_slot = st_token + kTokenRing * kWgRows;  // DQ: the block's slot in each row's selection, −1: none
  const uint32_t ds_tile = smem_u32(stages + kWgStages * S::kStage);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t bh = sz.batch * sz.heads_kv, x = item.x;
  const int64_t j = x / bh, bg = x % bh, b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const int64_t group = sz.heads_q / sz.heads_kv;
  const int64_t e_lo = plan.row_start[x] + static_cast<int64_t>(item.y) * plan.chunk_entries;
  const int64_t e_hi = std::min<int64_t>(e_lo + plan.chunk_entries, plan.row_start[x + 1]);
  const uint32_t rows = static_cast<uint32_t>((e_hi - e_lo) * group), ugroup = static_cast<uint32_t>(group);
  const int64_t n_steps = ceil_div(rows, kWgRows);
  const bool direct = plan.n_chunks[x] == 1;
  float* part = partial + static_cast<int64_t>(plan.slot_start[x] + item.y) * geo.slc_block * (2 * D);
  const uint64_t* list = plan.sorted + e_lo;
  const int64_t key_base = x * sz.seq;                                   // keys are x·T + t
  const bf16_t* q_base = q + (b * sz.seq * sz.heads_q + g * group) * D;  // head 0 of the group at token 0
  const bf16_t* do_base = dout + (b * sz.seq * sz.heads_q + g * group) * D;
  const int64_t stat_base = (b * sz.heads_q + g * group) * sz.seq;

  // Token of row `tid` of stage `step` (threads < kWgRows), −1 past the chunk's rows.
  auto fetch_token = [&](int64_t step) -> int {
    const uint32_t r = static_cast<uint32_t>(step * kWgRows) + static_cast<uint32_t>(tid);
    return r < rows ? static_cast<int>(list[r / ugroup] - key_base) : -1;
  };
  // DQ: the slot of that row's entry in its token's selection.
  const int* list_slots = DQ ? plan.slots + e_lo : nullptr;
  auto fetch_slot = [&](int64_t step) -> int {
    const uint32_t r = static_cast<uint32_t>(step * kWgRows) + static_cast<uint32_t>(tid);
    return DQ && r < rows ? list_slots[r / ugroup] : -1;
  };
  // Q and dO rows of a stage (each thread one 16-byte column chunk of every kRowStep-th row, so its
  // destination advances by a constant), and their lse and delta.
  constexpr int kChunks = D / 8, kRowStep = kThreads / kChunks;
  static_assert(kRowStep % 8 == 0 && kWgRows % kRowStep == 0, "row step must keep the swizzle phase");
  const int my_chunk = tid % kChunks, my_row = tid / kChunks;
  auto load_stage = [&](int64_t step) {
    const int buf = static_cast<int>(step % kWgStages);
    const int* tok = st_token + (step % kTokenRing) * kWgRows;
    const uint32_t r0 = static_cast<uint32_t>(step * kWgRows);
    unsigned char* qt = stages + buf * S::kStage;
    const uint32_t dst = sw128_offset(my_row, my_chunk, kWgRows);
#pragma unroll
    for (int i = 0; i < kWgRows / kRowStep; ++i) {
      const int row = my_row + i * kRowStep, t = tok[row];
      const int64_t off =
          t >= 0 ? (static_cast<int64_t>(t) * sz.heads_q + (r0 + row) % ugroup) * D + my_chunk * 8 : 0;
      cp_async16(qt + dst + i * kRowStep * 128, q_base + off, t >= 0);
      cp_async16(qt + S::kQ + dst + i * kRowStep * 128, do_base + off, t >= 0);
    }
    if (tid < kWgRows) {
      const int t = tok[tid];
      const int64_t at = t >= 0 ? stat_base + ((r0 + tid) % ugroup) * sz.seq + t : 0;
      cp_async4(st_lse + buf * kWgRows + tid, lse + at, t >= 0);
      cp_async4(st_delta + buf * kWgRows + tid, delta + at, t >= 0);
    }
  };

  // The Q and dO rows (128-byte lines) and the lse / delta of a stage whose tokens are known, into L2.
  auto prefetch_stage = [&](int64_t step) {
    constexpr int kLines = D / 64;
    const int* tok = st_token + (step % kTokenRing) * kWgRows;
    const uint32_t r0 = static_cast<uint32_t>(step * kWgRows);
    for (int i = tid; i < kWgRows * kLines; i += kThreads) {
      const int row = i / kLines, t = tok[row];
      if (t < 0) continue;
      const uint32_t head = (r0 + row) % ugroup;
      const int64_t off = (static_cast<int64_t>(t) * sz.heads_q + head) * D + (i % kLines) * 64;
      asm volatile("prefetch.global.L2 [%0];" ::"l"(q_base + off));
      asm volatile("prefetch.global.L2 [%0];" ::"l"(do_base + off));
      if (i % kLines == 0) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"(lse + stat_base + head * sz.seq + t));
        asm volatile("prefetch.global.L2 [%0];" ::"l"(delta + stat_base + head * sz.seq + t));
      }
    }
  };

  const uint32_t ks = smem_u32(smem), vs = ks + S::kK;
  const int64_t block0 = j * geo.slc_block;
  for (int64_t pass = 0; pass * kWgKeys < geo.slc_block; ++pass) {
    const int64_t key0 = block0 + pass * kWgKeys;
    const int pass_keys = static_cast<int>(std::min<int64_t>(kWgKeys, geo.slc_block - pass * kWgKeys));
    {
      const bf16_t* k_rows = k + ((b * sz.seq + key0) * sz.heads_kv + g) * D + my_chunk * 8;
      const bf16_t* v_rows = v + ((b * sz.seq + key0) * sz.heads_kv + g) * D + my_chunk * 8;
      const int64_t stride = sz.heads_kv * D;
      const uint32_t dst = sw128_offset(my_row, my_chunk, kWgKeys);
#pragma unroll
      for (int i = 0; i < kWgKeys / kRowStep; ++i) {
        const int r = my_row + i * kRowStep;
        const bool ok = r < pass_keys && key0 + r < sz.seq;
        cp_async16(smem + dst + i * kRowStep * 128, ok ? k_rows + r * stride : q, ok);
        cp_async16(smem + S::kK + dst + i * kRowStep * 128, ok ? v_rows + r * stride : q, ok);
      }
    }
    if (tid < kWgRows) {
#pragma unroll
      for (int i = 0; i < 3; ++i) {
        st_token[i * kWgRows + tid] = fetch_token(i);
        if (DQ) st_slot[i * kWgRows + tid] = fetch_slot(i);
      }
    }
    __syncthreads();
    if (n_steps > 0) load_stage(0);
    cp_async_commit();  // the K/V tiles ride with the first stage

    // Key of each of this lane's two accumulator rows, and the first token that sees it (keys past the pass
    // or the sequence: none).
    const int key_a = static_cast<int>(key0) + warp * 16 + (lane >> 2), key_b = key_a + 8;
    const int local_a = warp * 16 + (lane >> 2), local_b = local_a + 8;
    const int from_a = local_a < pass_keys && key_a < sz.seq ? key_a : 0x7fffffff;
    const int from_b = local_b < pass_keys && key_b < sz.seq ? key_b : 0x7fffffff;

    float dka[D / 2] = {}, dva[D / 2] = {}, s[32] = {}, dp[32] = {};
    for (int64_t step = 0; step < n_steps; ++step) {
      if (step + 1 < n_steps) load_stage(step + 1);
      cp_async_commit();
      if (step + 2 < n_steps) prefetch_stage(step + 2);
      const int fetched = tid < kWgRows && step + 3 < n_steps ? fetch_token(step + 3) : -1;
      const int fetched_slot = tid < kWgRows && step + 3 < n_steps ? fetch_slot(step + 3) : -1;
      cp_async_wait<1>();
      fence_proxy_async();
      __syncthreads();
      const int buf = static_cast<int>(step % kWgStages);
      const uint32_t qst = smem_u32(stages + buf * S::kStage), dost = qst + S::kQ;
      const int* token_st = st_token + (step % kTokenRing) * kWgRows;
      uint32_t dsa[4][4];
      wg_dkdv_stage<D>(dka, dva, s, dp, dsa, ks, vs, qst, dost, st_lse + buf * kWgRows,
                       st_delta + buf * kWgRows, token_st, scale_log2, lane,
                       [&](int t, int half) { return t >= (half ? from_b : from_a); });
      if constexpr (DQ) {
        // dSᵀ (keys × rows) into its swizzled tile while the products run, the A operand of dQ = dS·K:
        // dsa[kk] holds columns 16kk .. 16kk + 15 of this lane's two key rows, in 4-byte pairs.
        const int row_a = warp * 16 + (lane >> 2), pair = (lane & 3) * 4;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const int key_row = row_a + (i & 1) * 8, chunk = 2 * kk + (i >> 1);
            asm volatile(
                "st.shared.b32 [%0], %1;\n" ::"r"(ds_tile + sw128_offset(key_row, chunk, kWgKeys) + pair),
                "r"(dsa[kk][i])
                : "memory");
          }
        fence_proxy_async();
      }
      if (tid < kWgRows && step + 3 < n_steps) {
        st_token[((step + 3) % kTokenRing) * kWgRows + tid] = fetched;
        if (DQ) st_slot[((step + 3) % kTokenRing) * kWgRows + tid] = fetched_slot;
      }
      wg_wait<0>();
      if constexpr (DQ) {
        // After dV and dK, so that Pᵀ and dSᵀ leave the registers before dQ's accumulators arrive.
        __syncthreads();  // every warp's part of dSᵀ is written
        float dq[D / 2];
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < kWgKeys / 16; ++kk)
          wgmma_ss_mn<D>(dq, desc_mn_major(ds_tile, kWgKeys, kk), desc_mn_major(ks, kWgKeys, kk), kk > 0);
        wg_commit();
        wg_wait<0>();
        wg_hold(dq);
        // The rows to bf16 in the stage's Q tile (free now: the products are done, and the next load into
        // this stage comes after the barrier that ends the step), 16-byte chunks rotated by row against bank
        // conflicts, then each token's G rows (contiguous in dq_part) out in 16-byte pieces.
        constexpr int kRowChunks = D / 8;
        unsigned char* staging = stages + buf * S::kStage;
        const int col = (lane & 3) * 2;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int row = warp * 16 + (lane >> 2) + 8 * half;
#pragma unroll
          for (int nt = 0; nt < kRowChunks; ++nt)
            *reinterpret_cast<__nv_bfloat162*>(staging + row * (D * 2) + ((nt ^ (row & 7)) << 4) + col * 2) =
                __floats2bfloat162_rn(dq[4 * nt + 2 * half], dq[4 * nt + 2 * half + 1]);
        }
        __syncthreads();
        const int* tok = token_st;
        const int* slt = st_slot + (step % kTokenRing) * kWgRows;
        const uint32_t r0 = static_cast<uint32_t>(step * kWgRows);
        for (int i = tid; i < kWgRows * kRowChunks; i += kThreads) {
          const int row = i / kRowChunks, ch = i % kRowChunks, t = tok[row], sl = slt[row];
          if (t < 0) continue;
          const int64_t head = (r0 + row) % ugroup;
          bf16_t* dst = dq_part + ((((b * sz.seq + t) * sz.heads_kv + g) * n_idx + sl) * group + head) * D;
          *reinterpret_cast<uint4*>(dst + ch * 8) =
              *reinterpret_cast<const uint4*>(staging + row * (D * 2) + ((ch ^ (row & 7)) << 4));
        }
      }
      __syncthreads();
    }
    cp_async_wait<0>();
    wg_hold(dka);
    wg_hold(dva);

    const int col = (lane & 3) * 2;
    for (int half = 0; half < 2; ++half) {
      const int local = half ? local_b : local_a;
      const int64_t key = key0 + local;
      if (local >= pass_keys || key >= sz.seq) continue;
      if (direct) {
        bf16_t* krow = dk + ((b * sz.seq + key) * sz.heads_kv + g) * D;
        bf16_t* vrow = dv + ((b * sz.seq + key) * sz.heads_kv + g) * D;
#pragma unroll
        for (int nt = 0; nt < D / 8; ++nt) {
          *reinterpret_cast<__nv_bfloat162*>(krow + nt * 8 + col) =
              __floats2bfloat162_rn(dka[4 * nt + 2 * half] * scale, dka[4 * nt + 2 * half + 1] * scale);
          *reinterpret_cast<__nv_bfloat162*>(vrow + nt * 8 + col) =
              __floats2bfloat162_rn(dva[4 * nt + 2 * half], dva[4 * nt + 2 * half + 1]);
        }
      } else {
        float* row = part + (key - block0) * (2 * D);
#pragma unroll
        for (int nt = 0; nt < D / 8; ++nt) {
          *reinterpret_cast<float2*>(row + nt * 8 + col) =
              make_float2(dka[4 * nt + 2 * half] * scale, dka[4 * nt + 2 * half + 1] * scale);
          *reinterpret_cast<float2*>(row + D + nt * 8 + col) =
              make_float2(dva[4 * nt + 2 * half], dva[4 * nt + 2 * half + 1]);
        }
      }
    }
    __syncthreads();  // the next pass reloads the key tiles and the token ring
  }
#endif
}

bool tensor_core_path(ScalarType dtype, const NsaSizes& sz, const NsaGeometry& geo,
                      std::initializer_list<const void*> ptrs) {
  return dtype == ScalarType::bf16 && tensor_core_dims(sz.dim_k, sz.dim_v) &&
         sz.heads_q / sz.heads_kv <= kMaxGroup && geo.slc_block % kSub == 0 && aligned16(ptrs);
}
bool tensor_core_path(const NsaBackwardParams& p) {
  return tensor_core_path(p.dtype, p.sz, p.geo, {p.dout, p.q, p.k, p.v, p.dq, p.dk, p.dv});
}

int64_t max_sub_tiles(int64_t n_idx, const NsaGeometry& geo) { return n_idx * ceil_div(geo.slc_block, kSub); }

// The wgmma dK/dV kernel: head dims (64, 64) or (128, 128) where wgmma runs (nsa_internal.h).
bool slc_wgmma_path(const NsaBackwardParams& p) {
  return p.sz.dim_k == p.sz.dim_v && p.sz.dim_k != 192 && wgmma_available();
}

// dQ from the wgmma dK/dV kernel's partials (slc_dkdv_wgmma_kernel with DQ) instead of the query-side
// kernel: selection blocks of one pass. It trades the query side's 16 × 64 K/V rows per (token, KV head) read
// from L2 for n bf16 partial rows per (token, head) written to and read back from HBM.
// The partials take n × the bytes of dq; past a quarter of the device's memory (16 GiB at 64k tokens × 64
// heads × D 128 on an 80 GB H100 fits) the query-side kernel runs instead, so a long context does not fail
// for the workspace of a speed-up.
std::atomic<SlcDqKernel> g_dq_kernel{SlcDqKernel::automatic};
size_t device_memory_bytes() {
  static std::atomic<size_t> total[64];  // per device, 0: not read yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  size_t bytes = total[dev].load(std::memory_order_relaxed);
  if (bytes == 0) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return 0;
    bytes = prop.totalGlobalMem;
    total[dev].store(bytes, std::memory_order_relaxed);
  }
  return bytes;
}
size_t dq_partial_bytes(const NsaBackwardParams& p) {
  return static_cast<size_t>(p.sz.batch * p.sz.seq * p.sz.heads_q) * static_cast<size_t>(p.n_indices) *
         static_cast<size_t>(p.sz.dim_k) * sizeof(bf16_t);
}
bool fused_dq_path(const NsaBackwardParams& p) {
  return g_dq_kernel.load() == SlcDqKernel::automatic && slc_wgmma_path(p) && p.geo.slc_block <= kWgKeys &&
         p.n_indices > 0 && dq_partial_bytes(p) <= device_memory_bytes() / 4;
}

template <class Kernel>
Status allow_smem(Kernel kernel, size_t bytes) {
  return {cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
          nullptr};
}

// The selected backward's workspace.
struct SlcBackwardLayout {
  InverseIndex ix;
  float* delta = nullptr;
  double* delta64 = nullptr;
  int *n_chunks = nullptr, *item_start = nullptr, *n_slots = nullptr, *slot_start = nullptr;
  int2* items = nullptr;
  float* partial = nullptr;
  bf16_t* dq_part = nullptr;  // fused_dq_path: [B, T, Hkv, n_indices, G, Dk]
  int64_t chunk_entries = 0, max_items = 0;
  size_t bytes = 0;
};

SlcBackwardLayout slc_backward_layout(const NsaBackwardParams& p) {
  Carver c{static_cast<char*>(p.workspace)};
  SlcBackwardLayout l;
  l.ix = inverse_index_layout(p, fused_dq_path(p));
  const size_t rows = static_cast<size_t>(p.sz.batch * p.sz.seq * p.sz.heads_q);
  const size_t lists1 = static_cast<size_t>(l.ix.lists + 1);
  l.ix.counts = c.take<int>(lists1);
  l.ix.row_start = c.take<int>(lists1);
  l.ix.keys = c.take<uint64_t>(static_cast<size_t>(l.ix.entries));
  l.ix.sorted = c.take<uint64_t>(static_cast<size_t>(l.ix.entries));
  l.ix.temp = c.take<char>(l.ix.temp_bytes);
  if (l.ix.with_slots) {
    l.ix.slot_keys = c.take<int>(static_cast<size_t>(l.ix.entries));
    l.ix.slots = c.take<int>(static_cast<size_t>(l.ix.entries));
  }
  if (tensor_core_path(p)) {
    const int64_t group = p.sz.heads_q / p.sz.heads_kv;
    // Chunks of at least 256 rows; about 1024 chunks over the whole backward when the lists are long.
    l.chunk_entries = std::max(ceil_div(256, group), ceil_div(l.ix.entries, 1024));
    l.max_items = l.ix.lists + ceil_div(l.ix.entries, l.chunk_entries) + 1;
    const int64_t max_slots = 2 * ceil_div(l.ix.entries, l.chunk_entries) + 1;
    l.delta = c.take<float>(rows);
    l.n_chunks = c.take<int>(lists1);
    l.item_start = c.take<int>(lists1);
    l.n_slots = c.take<int>(lists1);
    l.slot_start = c.take<int>(lists1);
    l.items = c.take<int2>(static_cast<size_t>(l.max_items));
    l.partial = c.take<float>(static_cast<size_t>(max_slots * p.geo.slc_block * (p.sz.dim_k + p.sz.dim_v)));
    if (fused_dq_path(p)) l.dq_part = c.take<bf16_t>(rows * static_cast<size_t>(p.n_indices * p.sz.dim_k));
  } else {
    l.delta64 = c.take<double>(rows);
  }
  l.bytes = c.used;
  return l;
}

}  // namespace
}  // namespace nsa::kernels::nsa_impl

namespace nsa::kernels {
using namespace nsa_impl;

void set_slc_dq_kernel(SlcDqKernel choice) { g_dq_kernel.store(choice); }
bool nsa_slc_backward_accumulates(const NsaBackwardParams& p) {
  return tensor_core_path(p) && fused_dq_path(p);
}

Status launch_nsa_slc_forward(const NsaSlcForwardParams& p, cudaStream_t stream) {
  if (!tensor_core_path(p.dtype, p.sz, p.geo, {p.q, p.k, p.v, p.out})) return simt_slc_forward(p, stream);
  const float scale_log2 = static_cast<float>(p.scale) * kLog2e;
  const int64_t max_subs = max_sub_tiles(p.n_indices, p.geo);
  const dim3 grid(static_cast<unsigned>(p.sz.seq), static_cast<unsigned>(p.sz.batch * p.sz.heads_kv));
  Status st{};
  dispatch_dims(p.sz.dim_k, p.sz.dim_v, [&]<int DK, int DV>() {
    const bool ok = dispatch_index(p.index_type, [&]<class I>() {
      // Two stages and three programs per SM (12 warps; 158 registers, 73 KB of shared memory at D = 128):
      // the kernel is bound by the latency of each warp's product / softmax chain, so resident warps count
      // more than a deeper ring. Same-run H100 at 64k: three stages and two programs 31.6 ms, this 24.0 ms.
      constexpr int kCtas = DK > 128 ? 2 : 3;
      auto kernel = slc_query_kernel<DK, DV, false, I, 2, kCtas>;
      const size_t bytes = QuerySmem<DK, DV, false, 2>::bytes(max_subs);
      if (st = allow_smem(kernel, bytes); !st.ok()) return;
      kernel<<<grid, kThreads, bytes, stream>>>(
          static_cast<const bf16_t*>(p.q), static_cast<const bf16_t*>(p.k), static_cast<const bf16_t*>(p.v),
          static_cast<const I*>(p.indices), p.n_indices, nullptr, nullptr, nullptr,
          static_cast<bf16_t*>(p.out), static_cast<float*>(p.lse), p.sz, p.geo, scale_log2, 0.f, max_subs,
          p.error_flag);
      st = last_launch();
    });
    if (!ok) st = invalid("NSA block indices must be i32 or i64");
  });
  return st;
}

size_t nsa_slc_backward_workspace(const NsaBackwardParams& p) {
  NsaBackwardParams measure = p;
  measure.workspace = nullptr;
  return slc_backward_layout(measure).bytes;
}

Status launch_nsa_slc_backward(const NsaBackwardParams& p, cudaStream_t stream) {
  const SlcBackwardLayout ws = slc_backward_layout(p);
  if (Status s = build_inverse_index(p, ws.ix, stream); !s.ok()) return s;
  if (!tensor_core_path(p)) {
    if (p.accumulate_dq) return invalid("nsa_slc_backward: this path overwrites dq");
    if (Status s = row_delta<double>(p, ws.delta64, stream); !s.ok()) return s;
    return simt_slc_backward(p, ws.delta64, ws.ix.row_start, ws.ix.sorted, stream);
  }
  if (p.accumulate_dq && !nsa_slc_backward_accumulates(p))
    return invalid("nsa_slc_backward: this path overwrites dq (accumulate_dq is for the fused dQ path)");
  if (p.delta_in == nullptr)
    if (Status s = row_delta<float>(p, ws.delta, stream); !s.ok()) return s;
  const float* delta = p.delta_in ? p.delta_in : ws.delta;

  // Work items: each list cut into chunks of chunk_entries tokens.
  const int64_t lists = ws.ix.lists;
  slc_chunk_counts_kernel<<<grid_for(lists + 1, 256), 256, 0, stream>>>(ws.ix.row_start, ws.n_chunks,
                                                                        ws.n_slots, lists, ws.chunk_entries);
  if (Status s = last_launch(); !s.ok()) return s;
  size_t temp = ws.ix.temp_bytes;
  cudaError_t e =
      cub::DeviceScan::ExclusiveSum(ws.ix.temp, temp, ws.n_chunks, ws.item_start, lists + 1, stream);
  if (e != cudaSuccess) return {e, nullptr};
  temp = ws.ix.temp_bytes;
  e = cub::DeviceScan::ExclusiveSum(ws.ix.temp, temp, ws.n_slots, ws.slot_start, lists + 1, stream);
  if (e != cudaSuccess) return {e, nullptr};
  slc_items_kernel<<<grid_for(lists, 256), 256, 0, stream>>>(ws.n_chunks, ws.item_start, ws.items, lists);
  if (Status s = last_launch(); !s.ok()) return s;
  const SlcItems plan{ws.ix.row_start, ws.ix.sorted, ws.ix.slots, ws.n_chunks,     ws.item_start,
                      ws.slot_start,   ws.items,     lists,       ws.chunk_entries};

  const float scale_log2 = static_cast<float>(p.scale) * kLog2e, scale = static_cast<float>(p.scale);
  const int64_t max_subs = max_sub_tiles(p.n_indices, p.geo);
  Status st{};
  dispatch_dims(p.sz.dim_k, p.sz.dim_v, [&]<int DK, int DV>() {
    const auto* dout = static_cast<const bf16_t*>(p.dout);
    const auto* q = static_cast<const bf16_t*>(p.q);
    const auto* k = static_cast<const bf16_t*>(p.k);
    const auto* v = static_cast<const bf16_t*>(p.v);
    const auto* lse = static_cast<const float*>(p.lse);
    auto* dk = static_cast<bf16_t*>(p.dk);
    auto* dv = static_cast<bf16_t*>(p.dv);
    const bool fused = DK == DV && fused_dq_path(p);  // dQ from the dK/dV kernel's partials
    const bool ok =
        fused || dispatch_index(p.index_type, [&]<class I>() {
          // D <= 128: two stages (Q and dO parked in the second until they are in registers) and three
          // programs per SM (168 registers, 24 bytes spilled). Same-run H100 at 64k: three stages and two
          // programs per SM 46.6 ms for the branch's backward, this 42.2 ms. Head dim 192 keeps three stages,
          // two programs.
          constexpr int kStg = DK > 128 ? 3 : 2, kCtas = DK > 128 ? 2 : 3;
          auto kernel = slc_query_kernel<DK, DV, true, I, kStg, kCtas>;
          const size_t bytes = QuerySmem<DK, DV, true, kStg>::bytes(max_subs);
          if (st = allow_smem(kernel, bytes); !st.ok()) return;
          const dim3 grid(static_cast<unsigned>(p.sz.seq), static_cast<unsigned>(p.sz.batch * p.sz.heads_kv));
          kernel<<<grid, kThreads, bytes, stream>>>(q, k, v, static_cast<const I*>(p.indices), p.n_indices,
                                                    dout, lse, delta, static_cast<bf16_t*>(p.dq), nullptr,
                                                    p.sz, p.geo, scale_log2, scale, max_subs, nullptr);
          st = last_launch();
        });
    if (!ok) st = invalid("NSA block indices must be i32 or i64");
    if (!st.ok()) return;
    bool launched = false;
    if constexpr (DK == DV) {
      if (fused) {
        auto kernel = slc_dkdv_wgmma_kernel<DK, true>;
        if (st = allow_smem(kernel, WgKvSmem<DK, true>::kBytes); !st.ok()) return;
        kernel<<<static_cast<unsigned>(ws.max_items), kThreads, WgKvSmem<DK, true>::kBytes, stream>>>(
            dout, q, k, v, lse, delta, dk, dv, ws.partial, p.n_indices, ws.dq_part, p.sz, p.geo, scale_log2,
            scale, plan);
        if (st = last_launch(); !st.ok()) return;
        dispatch_index(p.index_type, [&]<class I>() {
          slc_dq_reduce_kernel<DK, I><<<static_cast<unsigned>(p.sz.batch * p.sz.seq * p.sz.heads_kv), 128,
                                        sizeof(int) * static_cast<size_t>(p.n_indices), stream>>>(
              ws.dq_part, static_cast<const I*>(p.indices), static_cast<bf16_t*>(p.dq), p.sz, p.geo,
              p.n_indices, scale, p.accumulate_dq);
        });
        launched = true;
      } else if (slc_wgmma_path(p)) {
        auto kernel = slc_dkdv_wgmma_kernel<DK, false>;
        if (st = allow_smem(kernel, WgKvSmem<DK, false>::kBytes); !st.ok()) return;
        kernel<<<static_cast<unsigned>(ws.max_items), kThreads, WgKvSmem<DK, false>::kBytes, stream>>>(
            dout, q, k, v, lse, delta, dk, dv, ws.partial, 0, nullptr, p.sz, p.geo, scale_log2, scale, plan);
        launched = true;
      }
    }
    if (!launched) {
      auto kernel = slc_dkdv_kernel<DK, DV>;
      if (st = allow_smem(kernel, KvSmem<DK, DV>::kBytes); !st.ok()) return;
      kernel<<<static_cast<unsigned>(ws.max_items), kThreads, KvSmem<DK, DV>::kBytes, stream>>>(
          dout, q, k, v, lse, delta, dk, dv, ws.partial, p.sz, p.geo, scale_log2, scale, plan);
    }
    if (st = last_launch(); !st.ok()) return;
    slc_reduce_kernel<DK, DV>
        <<<static_cast<unsigned>(lists), 256, 0, stream>>>(ws.partial, dk, dv, p.sz, p.geo, plan);
    st = last_launch();
  });
  return st;
}

}  // namespace nsa::kernels
