// Flash attention backward (FlashAttention-2 scheme on mma.sync), deterministic: no atomics, each output
// element has one writer and a fixed order of additions.
//
// With P = softmax rows rebuilt from lse, D_t = Σ_d dO_td·O_td (= Σ_s P_ts·dP_ts):
//   dP = dO·Vᵀ,  dS = P ∘ (dP − D),  dV = Pᵀ·dO,  dK = scale·dSᵀ·Q,  dQ = scale·dS·K.
// Three kernels:
//   1. delta: D for every (b, h, t) row, into the f32 workspace [B, Hq, T].
//   2. dK/dV: one CTA per (64-key tile, KV head, batch) loops over the G query heads of the group and the
//      query tiles that can see its keys (causal + window), so the sums over the group stay in registers
//      (group-centric: no atomics). Warp w owns keys 16w .. 16w + 15: it computes Sᵀ = K·Qᵀ and
//      dPᵀ = V·dOᵀ (16 × 64), turns them into Pᵀ and dSᵀ, and adds Pᵀ·dO and dSᵀ·Q into its f32 dV, dK
//      rows. Q, dO, lse and D tiles are double-buffered with cp.async.
//   3. dQ: one CTA per (64-query tile, kHeads heads, batch), the forward's layout: Q fragments in
//      registers (dO's re-read from shared memory, registers are short), K/V tiles double-buffered;
//      recomputes S and dP for its rows and adds dS·K.
// Recomputing S and dP in the dQ kernel (7 products instead of 5) is the price of determinism; the
// alternative, f32 atomic adds of dQ from the dK/dV kernel, gives run-to-run different bits.
#include <cmath>
#include <utility>

#include "kernels/attention/flash_attention.h"
#include "kernels/attention/flash_tiles.cuh"
#include "kernels/attention/group_attention.h"

namespace nsa::kernels {
namespace {

using namespace flash;

constexpr float kLog2e = 1.4426950408889634f;

// ---- 1. D = rowsum(dO ∘ O) ----

template <int D>
__global__ void flash_delta_kernel(const FlashBackwardParams p) {
  constexpr int kLanes = D / 8;  // lanes per row, 8 elements (16 bytes) each
  const FlashAttentionShape& z = p.shape;
  const int64_t rows = z.batch * z.seq * z.heads_q;
  const int64_t gid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t row = gid / kLanes;
  const int part = static_cast<int>(gid % kLanes);
  float acc = 0.f;
  int64_t b = 0, t = 0, h = 0;
  if (row < rows) {
    h = row % z.heads_q;
    t = (row / z.heads_q) % z.seq;
    b = row / (z.heads_q * z.seq);
    const bf16* o = static_cast<const bf16*>(p.out) + b * p.out_strides.batch + t * p.out_strides.seq +
                    h * p.out_strides.head + part * 8;
    const bf16* g = static_cast<const bf16*>(p.dout) + b * p.dout_strides.batch + t * p.dout_strides.seq +
                    h * p.dout_strides.head + part * 8;
    const uint4 ov = *reinterpret_cast<const uint4*>(o);
    const uint4 gv = *reinterpret_cast<const uint4*>(g);
    const __nv_bfloat162* o2 = reinterpret_cast<const __nv_bfloat162*>(&ov);
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&gv);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 a = __bfloat1622float2(o2[i]), c = __bfloat1622float2(g2[i]);
      acc += a.x * c.x + a.y * c.y;
    }
  }
#pragma unroll
  for (int off = kLanes / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (row < rows && part == 0) p.delta[(b * z.heads_q + h) * z.seq + t] = acc;
}

// ---- 2. dK, dV ----

template <int D>
struct KvTiles {
  static constexpr int kKeys = 64;    // keys per CTA (16 per warp)
  static constexpr int kTokens = 64;  // queries per step
  static constexpr int kThreads = 128;
  static constexpr int kKV = kKeys * D;
  static constexpr int kQ = kTokens * D;
  // K, V; 2 stages of Q and dO; 2 stages of lse and D (f32).
  static constexpr size_t kSmem =
      static_cast<size_t>(2 * kKV + 4 * kQ) * sizeof(bf16) + 4 * kTokens * sizeof(float);
  static_assert(kThreads == 2 * kTokens, "one thread per lse and per D entry of a step");
};

template <int D>
__global__ void __launch_bounds__(KvTiles<D>::kThreads, 2)
    flash_dkdv_kernel(const FlashBackwardParams p, int window) {
  using Tiles = KvTiles<D>;
  constexpr int kKeys = Tiles::kKeys, kTokens = Tiles::kTokens, kThreads = Tiles::kThreads;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sk = reinterpret_cast<bf16*>(smem);
  bf16* sv = sk + Tiles::kKV;
  bf16* sq = sv + Tiles::kKV;                                   // 2 stages
  bf16* sdo = sq + 2 * Tiles::kQ;                               // 2 stages
  float* slse = reinterpret_cast<float*>(sdo + 2 * Tiles::kQ);  // 2 stages, log2 domain not yet applied
  float* sdelta = slse + 2 * kTokens;                           // 2 stages

  const FlashAttentionShape& z = p.shape;
  const int seq = static_cast<int>(z.seq);
  const int group = static_cast<int>(z.heads_q / z.heads_kv);
  const int s0 = blockIdx.x * kKeys;
  const int kv_head = blockIdx.y, b = blockIdx.z;
  const CausalWindow mask{window};
  // Queries that see a key of this tile: t >= s0, and t <= s0 + 63 + window − 1 under a window.
  const int t_last = window > 0 ? min(seq - 1, s0 + kKeys - 1 + window - 1) : seq - 1;
  const int q_first = s0 / kTokens;
  const int q_tiles = t_last / kTokens - q_first + 1;
  const int steps = group * q_tiles;

  const bf16* kg = static_cast<const bf16*>(p.k) + b * p.k_strides.batch + s0 * p.k_strides.seq +
                   kv_head * p.k_strides.head;
  const bf16* vg = static_cast<const bf16*>(p.v) + b * p.v_strides.batch + s0 * p.v_strides.seq +
                   kv_head * p.v_strides.head;
  copy_tile_async<kKeys, D, kThreads>(sk, kg, p.k_strides.seq, seq - s0);
  copy_tile_async<kKeys, D, kThreads>(sv, vg, p.v_strides.seq, seq - s0);
  // Step i: head kv_head·G + i / q_tiles, query tile q_first + i % q_tiles.
  auto load_step = [&](int i, int stage) {
    const int h = kv_head * group + i / q_tiles;
    const int t0 = (q_first + i % q_tiles) * kTokens;
    const bf16* qg =
        static_cast<const bf16*>(p.q) + b * p.q_strides.batch + t0 * p.q_strides.seq + h * p.q_strides.head;
    const bf16* dog = static_cast<const bf16*>(p.dout) + b * p.dout_strides.batch + t0 * p.dout_strides.seq +
                      h * p.dout_strides.head;
    copy_tile_async<kTokens, D, kThreads>(sq + stage * Tiles::kQ, qg, p.q_strides.seq, seq - t0);
    copy_tile_async<kTokens, D, kThreads>(sdo + stage * Tiles::kQ, dog, p.dout_strides.seq, seq - t0);
    const int r = threadIdx.x % kTokens;
    const bool valid = t0 + r < seq;
    const int64_t at = (static_cast<int64_t>(b) * z.heads_q + h) * z.seq + (valid ? t0 + r : 0);
    if (threadIdx.x < kTokens) {
      cp_async_4(smem_u32(slse + stage * kTokens + r), p.lse + at, valid);
    } else {
      cp_async_4(smem_u32(sdelta + stage * kTokens + r), p.delta + at, valid);
    }
  };
  load_step(0, 0);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const LaneRoles l(lane);
  const int key0 = 16 * warp;                             // this warp's keys within the tile
  const int s_lo = s0 + key0 + l.group, s_hi = s_lo + 8;  // the two key rows this lane holds
  const float c = z.scale * kLog2e;

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = 0.f;
    dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.f;
  }

  int stage = 0;
  for (int i = 0; i < steps; ++i, stage ^= 1) {
    cp_async_wait<0>();
    __syncthreads();  // step i visible to all; every warp is done with the other stage
    if (i + 1 < steps) load_step(i + 1, stage ^ 1);
    cp_async_commit();
    const int t0 = (q_first + i % q_tiles) * kTokens;
    const bf16* qt = sq + stage * Tiles::kQ;
    const bf16* dot = sdo + stage * Tiles::kQ;
    const float* lse = slse + stage * kTokens;
    const float* delta = sdelta + stage * kTokens;

    // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, 16 keys × 64 queries per warp.
    float st[kTokens / 8][4], dpt[kTokens / 8][4];
#pragma unroll
    for (int n = 0; n < kTokens / 8; ++n) {
      st[n][0] = st[n][1] = st[n][2] = st[n][3] = 0.f;
      dpt[n][0] = dpt[n][1] = dpt[n][2] = dpt[n][3] = 0.f;
    }
    // Unrolled by 2 only: fully unrolled, ptxas hoists every K/V fragment and spills at D = 128.
#pragma unroll 2
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t ka[4], va[4];
      load_a<D>(ka, sk, key0, kk, l);
      load_a<D>(va, sv, key0, kk, l);
#pragma unroll
      for (int nn = 0; nn < kTokens / 16; ++nn) {
        uint32_t qb[4], gb[4];
        load_b_rows<D>(qb, qt, 16 * nn, kk, l);
        load_b_rows<D>(gb, dot, 16 * nn, kk, l);
        mma_bf16(st[2 * nn], ka, qb[0], qb[1]);
        mma_bf16(st[2 * nn + 1], ka, qb[2], qb[3]);
        mma_bf16(dpt[2 * nn], va, gb[0], gb[1]);
        mma_bf16(dpt[2 * nn + 1], va, gb[2], gb[3]);
      }
    }

    // Pᵀ = 2^(x − lse·log2 e), dSᵀ = Pᵀ ∘ (dPᵀ − D); hidden and padded entries are 0.
    const bool check =
        !mask.all_visible(t0, t0 + kTokens - 1, s0 + key0, s0 + key0 + 15) || t0 + kTokens > seq;
#pragma unroll
    for (int n = 0; n < kTokens / 8; ++n) {
      const int col = 8 * n + 2 * l.quad;
      const float2 lse2 = *reinterpret_cast<const float2*>(lse + col);
      const float2 del2 = *reinterpret_cast<const float2*>(delta + col);
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float row_lse = (r & 1) ? lse2.y : lse2.x;
        const float row_delta = (r & 1) ? del2.y : del2.x;
        float prob = exp2f(st[n][r] * c - row_lse * kLog2e);
        if (check) {
          const int t = t0 + col + (r & 1);
          if (!(t < seq && mask.visible(t, r < 2 ? s_lo : s_hi))) prob = 0.f;
        }
        st[n][r] = prob;
        dpt[n][r] = prob * (dpt[n][r] - row_delta);
      }
    }

    // dV += Pᵀ·dO, dK += dSᵀ·Q (scale applied at the end).
#pragma unroll
    for (int kk = 0; kk < kTokens / 16; ++kk) {
      uint32_t pa[4], sa[4];
      acc_to_a(pa, st[2 * kk], st[2 * kk + 1]);
      acc_to_a(sa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int nn = 0; nn < D / 16; ++nn) {
        uint32_t gb[4], qb[4];
        load_b_cols<D>(gb, dot, 16 * kk, nn, l);
        load_b_cols<D>(qb, qt, 16 * kk, nn, l);
        mma_bf16(dv[2 * nn], pa, gb[0], gb[1]);
        mma_bf16(dv[2 * nn + 1], pa, gb[2], gb[3]);
        mma_bf16(dk[2 * nn], sa, qb[0], qb[1]);
        mma_bf16(dk[2 * nn + 1], sa, qb[2], qb[3]);
      }
    }
  }

  // The warp's own K and V rows (read by no other warp) stage its dK and dV for 16-byte stores.
  store_acc_rows<D>(sk, key0, dk, z.scale, z.scale, l);
  store_acc_rows<D>(sv, key0, dv, 1.f, 1.f, l);
  __syncwarp();
  const int valid = seq - (s0 + key0);
  bf16* dkg = static_cast<bf16*>(p.dk) + b * p.dk_strides.batch + (s0 + key0) * p.dk_strides.seq +
              kv_head * p.dk_strides.head;
  bf16* dvg = static_cast<bf16*>(p.dv) + b * p.dv_strides.batch + (s0 + key0) * p.dv_strides.seq +
              kv_head * p.dv_strides.head;
  write_rows<D>(dkg, p.dk_strides.seq, sk, key0, valid, lane);
  write_rows<D>(dvg, p.dv_strides.seq, sv, key0, valid, lane);
}

// ---- 3. dQ ----

template <int D, int kHeads>
struct DqTiles {
  static constexpr int kTokens = 64, kKeys = 64;
  static constexpr int kWarpsPerHead = kTokens / 16;
  static constexpr int kThreads = 32 * kWarpsPerHead * kHeads;
  static constexpr int kQ = kHeads * kTokens * D;
  static constexpr int kKV = kKeys * D;
  // Q and dO of the CTA's heads; 2 stages of K and V.
  static constexpr size_t kSmem = static_cast<size_t>(2 * kQ + 4 * kKV) * sizeof(bf16);
};

template <int D, int kHeads>
__global__ void __launch_bounds__(DqTiles<D, kHeads>::kThreads)
    flash_dq_kernel(const FlashBackwardParams p, int window, int slices) {
  using Tiles = DqTiles<D, kHeads>;
  constexpr int kTokens = Tiles::kTokens, kKeys = Tiles::kKeys, kThreads = Tiles::kThreads;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sdo = sq + Tiles::kQ;
  bf16* sk = sdo + Tiles::kQ;      // 2 stages
  bf16* sv = sk + 2 * Tiles::kKV;  // 2 stages

  const FlashAttentionShape& z = p.shape;
  const int seq = static_cast<int>(z.seq);
  const QueryTile<kTokens, kKeys, kHeads> where(slices, window, seq,
                                                static_cast<int>(z.heads_q / z.heads_kv));
  const int b = where.b, h0 = where.h0, kv_head = where.kv_head, t0 = where.t0;
  const int first = where.first, last = where.last;
  const CausalWindow mask{window};

  const bf16* qg =
      static_cast<const bf16*>(p.q) + b * p.q_strides.batch + t0 * p.q_strides.seq + h0 * p.q_strides.head;
  const bf16* dog = static_cast<const bf16*>(p.dout) + b * p.dout_strides.batch + t0 * p.dout_strides.seq +
                    h0 * p.dout_strides.head;
  const bf16* kg = static_cast<const bf16*>(p.k) + b * p.k_strides.batch + kv_head * p.k_strides.head;
  const bf16* vg = static_cast<const bf16*>(p.v) + b * p.v_strides.batch + kv_head * p.v_strides.head;
  auto load_kv = [&](int j, int stage) {
    const int s0 = j * kKeys;
    copy_tile_async<kKeys, D, kThreads>(sk + stage * Tiles::kKV, kg + s0 * p.k_strides.seq, p.k_strides.seq,
                                        seq - s0);
    copy_tile_async<kKeys, D, kThreads>(sv + stage * Tiles::kKV, vg + s0 * p.v_strides.seq, p.v_strides.seq,
                                        seq - s0);
  };
#pragma unroll
  for (int hh = 0; hh < kHeads; ++hh) {
    copy_tile_async<kTokens, D, kThreads>(sq + hh * kTokens * D, qg + hh * p.q_strides.head, p.q_strides.seq,
                                          seq - t0);
    copy_tile_async<kTokens, D, kThreads>(sdo + hh * kTokens * D, dog + hh * p.dout_strides.head,
                                          p.dout_strides.seq, seq - t0);
  }
  load_kv(last, 0);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const LaneRoles l(lane);
  const int head = warp / Tiles::kWarpsPerHead;
  const int row0 = (warp % Tiles::kWarpsPerHead) * 16;
  const int q_row0 = head * kTokens + row0;
  const int tq = t0 + row0;
  const int t_lo = tq + l.group, t_hi = t_lo + 8;
  const int h = h0 + head;
  const float c = z.scale * kLog2e;
  // lse (log2 domain) and D of the lane's two rows; padded rows take 0 (their products are never stored).
  const int64_t row_base = (static_cast<int64_t>(b) * z.heads_q + h) * z.seq;
  const float lse_lo = t_lo < seq ? p.lse[row_base + t_lo] * kLog2e : 0.f;
  const float lse_hi = t_hi < seq ? p.lse[row_base + t_hi] * kLog2e : 0.f;
  const float del_lo = t_lo < seq ? p.delta[row_base + t_lo] : 0.f;
  const float del_hi = t_hi < seq ? p.delta[row_base + t_hi] : 0.f;

  uint32_t qf[D / 16][4];  // dO fragments are re-read from shared memory: registers are short
  float dq[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

  int stage = 0;
  for (int j = last; j >= first; --j, stage ^= 1) {
    cp_async_wait<0>();
    __syncthreads();
    if (j == last) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        load_a<D>(qf[kk], sq, q_row0, kk, l);
      }
    }
    if (j > first) load_kv(j - 1, stage ^ 1);
    cp_async_commit();
    const bf16* kt = sk + stage * Tiles::kKV;
    const bf16* vt = sv + stage * Tiles::kKV;

    // S = Q·Kᵀ, dP = dO·Vᵀ (16 × 64 per warp).
    float s[kKeys / 8][4], dp[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
      dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t gf[4];
      load_a<D>(gf, sdo, q_row0, kk, l);
#pragma unroll
      for (int nn = 0; nn < kKeys / 16; ++nn) {
        uint32_t kb[4], vb[4];
        load_b_rows<D>(kb, kt, 16 * nn, kk, l);
        load_b_rows<D>(vb, vt, 16 * nn, kk, l);
        mma_bf16(s[2 * nn], qf[kk], kb[0], kb[1]);
        mma_bf16(s[2 * nn + 1], qf[kk], kb[2], kb[3]);
        mma_bf16(dp[2 * nn], gf, vb[0], vb[1]);
        mma_bf16(dp[2 * nn + 1], gf, vb[2], vb[3]);
      }
    }

    // dS = P ∘ (dP − D), hidden entries 0.
    const int s0 = j * kKeys;
    const bool check = !mask.all_visible(tq, tq + 15, s0, s0 + kKeys - 1);
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        float prob = exp2f(s[n][r] * c - (r < 2 ? lse_lo : lse_hi));
        if (check && !mask.visible(r < 2 ? t_lo : t_hi, s0 + 8 * n + 2 * l.quad + (r & 1))) prob = 0.f;
        dp[n][r] = prob * (dp[n][r] - (r < 2 ? del_lo : del_hi));
      }

      // dQ += dS·K.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[4];
      acc_to_a(a, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
      for (int nn = 0; nn < D / 16; ++nn) {
        uint32_t kb[4];
        load_b_cols<D>(kb, kt, 16 * kk, nn, l);
        mma_bf16(dq[2 * nn], a, kb[0], kb[1]);
        mma_bf16(dq[2 * nn + 1], a, kb[2], kb[3]);
      }
    }
  }

  store_acc_rows<D>(sq, q_row0, dq, z.scale, z.scale, l);
  __syncwarp();
  bf16* dqg =
      static_cast<bf16*>(p.dq) + b * p.dq_strides.batch + tq * p.dq_strides.seq + h * p.dq_strides.head;
  write_rows<D>(dqg, p.dq_strides.seq, sq, q_row0, seq - tq, lane);
}

template <class Kernel>
Status allow_smem(Kernel kernel, size_t bytes) {
  const cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  return {e, e == cudaSuccess ? nullptr : "flash_attention_backward: shared memory request refused"};
}

template <int D, int kHeads>
Status launch_backward(const FlashBackwardParams& p, int window, cudaStream_t stream) {
  const FlashAttentionShape& z = p.shape;
  if (!p.delta_ready) {
    constexpr int kThreads = 256;
    const int64_t threads = z.batch * z.seq * z.heads_q * (D / 8);
    flash_delta_kernel<D>
        <<<static_cast<unsigned>((threads + kThreads - 1) / kThreads), kThreads, 0, stream>>>(p);
    if (Status s = last_launch(); !s.ok()) return s;
  }
  if (flash_kernel() == FlashKernel::automatic && group_attention_ok(p))
    return launch_group_attention_backward(p, stream);
  {
    using Tiles = KvTiles<D>;
    if (Status s = allow_smem(flash_dkdv_kernel<D>, Tiles::kSmem); !s.ok()) return s;
    const dim3 grid(static_cast<unsigned>((z.seq + Tiles::kKeys - 1) / Tiles::kKeys),
                    static_cast<unsigned>(z.heads_kv), static_cast<unsigned>(z.batch));
    flash_dkdv_kernel<D><<<grid, Tiles::kThreads, Tiles::kSmem, stream>>>(p, window);
    if (Status s = last_launch(); !s.ok()) return s;
  }
  using Tiles = DqTiles<D, kHeads>;
  if (Status s = allow_smem(flash_dq_kernel<D, kHeads>, Tiles::kSmem); !s.ok()) return s;
  const int64_t tiles = (z.seq + Tiles::kTokens - 1) / Tiles::kTokens;
  const int slices = static_cast<int>(z.heads_q / kHeads);
  const dim3 grid(static_cast<unsigned>(tiles * slices), static_cast<unsigned>(z.batch));
  flash_dq_kernel<D, kHeads><<<grid, Tiles::kThreads, Tiles::kSmem, stream>>>(p, window, slices);
  return last_launch();
}

}  // namespace

bool flash_backward_accumulates(const FlashBackwardParams& p) {
  return flash_kernel() == FlashKernel::automatic && group_attention_ok(p);
}

Status launch_flash_attention_backward(const FlashBackwardParams& p, cudaStream_t stream) {
  if (const char* err = flash_shape_error(p.shape)) return invalid(err);
  const std::pair<const void*, const BthStrides*> operands[] = {
      {p.q, &p.q_strides},       {p.k, &p.k_strides},   {p.v, &p.v_strides},   {p.out, &p.out_strides},
      {p.dout, &p.dout_strides}, {p.dq, &p.dq_strides}, {p.dk, &p.dk_strides}, {p.dv, &p.dv_strides}};
  for (const auto& [ptr, strides] : operands)
    if (!flash_operand_ok(ptr, *strides))
      return invalid("flash_attention_backward: operands must be 16-byte aligned with strides multiple of 8");
  if (p.lse == nullptr || p.delta == nullptr)
    return invalid("flash_attention_backward: lse and delta needed");
  if (p.accumulate_dq && !flash_backward_accumulates(p))
    return invalid("flash_attention_backward: accumulate_dq needs the group-row wgmma path");
  const int window = flash_window(p.shape);
  const bool pairs = (p.shape.heads_q / p.shape.heads_kv) % 2 == 0;
  if (p.shape.head_dim == 64)
    return pairs ? launch_backward<64, 2>(p, window, stream) : launch_backward<64, 1>(p, window, stream);
  return pairs ? launch_backward<128, 2>(p, window, stream) : launch_backward<128, 1>(p, window, stream);
}

}  // namespace nsa::kernels
