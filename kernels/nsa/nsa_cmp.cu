// Compressed attention (paper eq. 8 over the keys of eq. 7), flash-style on tensor cores (bf16 in, f32
// accumulation), with the CUDA-core path for everything else.
//
// Rows of one program are the (token, head) pairs of one GQA group, enumerated R = t·G + h (the group's
// heads are adjacent in memory), so one compressed K/V tile in shared memory serves all G heads of several
// tokens; the block-causal mask is per row: key i is visible to token t iff i·d + l − 1 <= t.
//   forward  64 rows × 64-key tiles, 4 warps of 16 rows, online softmax, K/V double-buffered (cp.async);
//            the programs holding the latest tokens (most keys) are launched first.
//   dQ       the same tiling; recomputes S and dP from lse and delta = rowsum(dO ∘ O).
//   dK/dV    one program per 64-key tile and chunk of query rows: 4 warps of 16 keys compute Sᵀ = K·Qᵀ,
//            dPᵀ = V·dOᵀ for 32 query rows at a time and accumulate dV += Pᵀ·dO, dK += dSᵀ·Q in registers.
//            A tile seen by more rows than one chunk holds writes f32 partials that a second kernel adds in
//            chunk order, so the result is deterministic and no program runs much longer than another.
#include <algorithm>

#include "kernels/nsa/nsa_device.cuh"
#include "kernels/nsa/nsa_internal.h"

namespace nsa::kernels::nsa_impl {
namespace {

constexpr int kThreads = 128;   // 4 warps
constexpr int kRows = 64;       // query rows per forward / dQ program
constexpr int kKeys = 64;       // compressed keys per tile
constexpr int kBwdRows = 32;    // query rows per product step of dK/dV
constexpr int kStageRows = 64;  // query rows per loaded stage of dK/dV (two product steps per barrier)

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

template <int DK, int DV>
struct FwdSmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr size_t kBytes = sizeof(bf16_t) * (kRows * kLdK + 2 * kKeys * kLdK + 2 * kKeys * kLdV);
};

// Loads compressed key/value tile `kt` of (b, g) into the given buffers (rows past Nc zero-filled).
template <int DK, int DV>
__device__ __forceinline__ void load_kv_tile(bf16_t* ks, bf16_t* vs, const bf16_t* k, const bf16_t* v,
                                             const bf16_t* any, int64_t kt, const NsaSizes& sz,
                                             const GroupRows& gr, int tid) {
  const int64_t i0 = kt * kKeys;
  auto row = [&](const bf16_t* base, int r, int dim) -> const bf16_t* {
    const int64_t i = i0 + r;
    return i < sz.keys ? base + ((gr.b * sz.keys + i) * sz.heads_kv + gr.g) * dim : nullptr;
  };
  load_rows_async(
      ks, DK + 8, kKeys, DK, any, [&](int r) { return row(k, r, DK); }, tid, kThreads);
  load_rows_async(
      vs, DV + 8, kKeys, DV, any, [&](int r) { return row(v, r, DV); }, tid, kThreads);
}

template <int DK, int DV>
__global__ void __launch_bounds__(kThreads, 2)
    cmp_forward_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                       const bf16_t* __restrict__ v, bf16_t* __restrict__ out, float* __restrict__ lse,
                       NsaSizes sz, NsaGeometry geo, float scale_log2) {
  using S = FwdSmem<DK, DV>;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);
  bf16_t* ks = qs + kRows * S::kLdK;
  bf16_t* vs = ks + 2 * kKeys * S::kLdK;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const GroupRows gr = group_rows(sz, blockIdx.y);
  const int64_t rows = gr.total();
  const int64_t row0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * kRows;  // latest tokens first
  load_rows_async(
      qs, S::kLdK, kRows, DK, q,
      [&](int r) { return row0 + r < rows ? q + gr.offset(row0 + r, DK) : nullptr; }, tid, kThreads);
  cp_async_commit();

  auto visible = [&](int64_t r) {
    return r < rows ? visible_cmp(gr.token(r), sz.keys, geo.cmp_block, geo.cmp_stride) : int64_t{0};
  };
  const int64_t vis_cta = visible(std::min(row0 + kRows, rows) - 1);
  const int64_t n_kt = ceil_div(vis_cta, kKeys);
  if (n_kt > 0) load_kv_tile<DK, DV>(ks, vs, k, v, q, 0, sz, gr, tid);
  cp_async_commit();

  const int64_t ra = row0 + warp * 16 + (lane >> 2), rb = ra + 8;
  const int64_t vis_a = visible(ra), vis_b = visible(rb);
  const int64_t vis_warp = visible(std::min(row0 + warp * 16 + 15, rows - 1));

  float o[DV / 8][4] = {};
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
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
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int64_t key = i0 + nt * 8 + (lane & 3) * 2;
        s[nt][0] = key < vis_a ? s[nt][0] * scale_log2 : -INFINITY;
        s[nt][1] = key + 1 < vis_a ? s[nt][1] * scale_log2 : -INFINITY;
        s[nt][2] = key < vis_b ? s[nt][2] * scale_log2 : -INFINITY;
        s[nt][3] = key + 1 < vis_b ? s[nt][3] * scale_log2 : -INFINITY;
        mx_a = fmaxf(mx_a, fmaxf(s[nt][0], s[nt][1]));
        mx_b = fmaxf(mx_b, fmaxf(s[nt][2], s[nt][3]));
      }
      const float mn_a = fmaxf(m_a, quad_max(mx_a)), mn_b = fmaxf(m_b, quad_max(mx_b));
      const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
      const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
      m_a = mn_a;
      m_b = mn_b;
      float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        s[nt][0] = exp2f(s[nt][0] - base_a);
        s[nt][1] = exp2f(s[nt][1] - base_a);
        s[nt][2] = exp2f(s[nt][2] - base_b);
        s[nt][3] = exp2f(s[nt][3] - base_b);
        sum_a += s[nt][0] + s[nt][1];
        sum_b += s[nt][2] + s[nt][3];
      }
      l_a = l_a * corr_a + sum_a;
      l_b = l_b * corr_b + sum_b;
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
  auto finish = [&](int64_t r, float m, float l, int half) {
    if (r >= rows) return;
    bf16_t* orow = out + gr.offset(r, DV);
    const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
    for (int nt = 0; nt < DV / 8; ++nt)
      *reinterpret_cast<__nv_bfloat162*>(orow + nt * 8 + (lane & 3) * 2) =
          __floats2bfloat162_rn(o[nt][2 * half] * inv, o[nt][2 * half + 1] * inv);
    if ((lane & 3) == 0) lse[gr.stat(r)] = l > 0.f ? (m + log2f(l)) * kLn2 : -INFINITY;
  };
  finish(ra, m_a, l_a, 0);
  finish(rb, m_b, l_b, 1);
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
          const float p = vis ? exp2f(s[nt][e] * scale_log2 - (e < 2 ? lse_a : lse_b)) : 0.f;
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

template <int DK, int DV>
struct DkvSmem {
  static constexpr int kLdK = DK + 8, kLdV = DV + 8;
  static constexpr size_t kTiles = sizeof(bf16_t) * (kKeys * (kLdK + kLdV) + 2 * kStageRows * (kLdK + kLdV));
  static constexpr size_t kBytes = kTiles + 2 * kStageRows * (2 * sizeof(float) + sizeof(int));
};

// Query rows of compressed key tile kt: tokens from the first one that sees the tile's first key.
struct CmpChunks {
  int64_t chunk_rows, max_chunks, n_kt;
  __host__ __device__ int64_t first_row(int64_t kt, const NsaSizes& sz, const NsaGeometry& geo) const {
    return (kt * kKeys * geo.cmp_stride + geo.cmp_block - 1) * (sz.heads_q / sz.heads_kv);
  }
  __host__ __device__ int64_t chunks(int64_t kt, const NsaSizes& sz, const NsaGeometry& geo) const {
    return ceil_div(sz.seq * (sz.heads_q / sz.heads_kv) - first_row(kt, sz, geo), chunk_rows);
  }
  // Partial slot of (bg, kt, chunk): sparse (max_chunks per tile), only tiles of several chunks use theirs.
  __host__ __device__ int64_t slot(int64_t bg, int64_t kt, int64_t chunk) const {
    return (bg * n_kt + kt) * max_chunks + chunk;
  }
};

template <int DK, int DV>
__global__ void __launch_bounds__(kThreads, 2)
    cmp_dkdv_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q,
                    const bf16_t* __restrict__ k, const bf16_t* __restrict__ v, const float* __restrict__ lse,
                    const float* __restrict__ delta, bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                    float* __restrict__ partial, NsaSizes sz, NsaGeometry geo, float scale_log2, float scale,
                    CmpChunks plan) {
  using S = DkvSmem<DK, DV>;
  const int64_t chunk = blockIdx.x, kt = blockIdx.y, bg = blockIdx.z;
  const int64_t n_chunks = plan.chunks(kt, sz, geo);
  if (chunk >= n_chunks) return;
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
  const int64_t r_begin = plan.first_row(kt, sz, geo) + chunk * plan.chunk_rows;
  const int64_t r_end = std::min(r_begin + plan.chunk_rows, gr.total());
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
            const float p = vis ? exp2f(s[nt][e] * scale_log2 - st_lse[col]) : 0.f;
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

  const bool direct = n_chunks == 1;
  float* part = partial + plan.slot(bg, kt, chunk) * kKeys * (DK + DV);
  auto finish = [&](int64_t key, int half) {
    if (key >= sz.keys) return;
    const int64_t local = key - kt * kKeys;
    if (direct) {
      bf16_t* krow = dk + ((gr.b * sz.keys + key) * sz.heads_kv + gr.g) * DK;
      bf16_t* vrow = dv + ((gr.b * sz.keys + key) * sz.heads_kv + gr.g) * DV;
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
}

// Adds the chunk partials of each key tile that has several, in chunk order.
template <int DK, int DV>
__global__ void cmp_reduce_kernel(const float* __restrict__ partial, bf16_t* __restrict__ dk,
                                  bf16_t* __restrict__ dv, NsaSizes sz, NsaGeometry geo, CmpChunks plan) {
  const int64_t kt = blockIdx.x, bg = blockIdx.y;
  const int64_t n_chunks = plan.chunks(kt, sz, geo);
  if (n_chunks <= 1) return;
  const int64_t b = bg / sz.heads_kv, g = bg % sz.heads_kv;
  const float* base = partial + plan.slot(bg, kt, 0) * kKeys * (DK + DV);
  for (int idx = threadIdx.x; idx < kKeys * (DK + DV); idx += blockDim.x) {
    const int local = idx / (DK + DV), col = idx % (DK + DV);
    const int64_t key = kt * kKeys + local;
    if (key >= sz.keys) continue;
    float sum = 0.f;
    for (int64_t c = 0; c < n_chunks; ++c) sum += base[c * kKeys * (DK + DV) + idx];
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

// Chunk length: about 1024 programs over the whole backward (several waves on 132 SMs), at least 512 rows
// (16 steps) so that loading the key tile is amortised.
CmpChunks plan_chunks(const NsaSizes& sz, const NsaGeometry& geo) {
  CmpChunks plan{1, 1, ceil_div(sz.keys, kKeys)};
  const int64_t group = sz.heads_q / sz.heads_kv;
  int64_t rows = 0;
  for (int64_t kt = 0; kt < plan.n_kt; ++kt) rows += sz.seq * group - plan.first_row(kt, sz, geo);
  rows *= sz.batch * sz.heads_kv;
  plan.chunk_rows = std::max<int64_t>(512, ceil_div(ceil_div(rows, 1024), kStageRows) * kStageRows);
  plan.max_chunks = plan.n_kt > 0 ? plan.chunks(0, sz, geo) : 1;
  return plan;
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
    const CmpChunks plan = plan_chunks(p.sz, p.geo);
    l.delta = c.take<float>(rows);
    const bool split = plan.max_chunks > 1;
    l.partial = c.take<float>(split ? static_cast<size_t>(p.sz.batch * p.sz.heads_kv * plan.n_kt *
                                                          plan.max_chunks * kKeys * (p.sz.dim_k + p.sz.dim_v))
                                    : 0);
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

Status launch_nsa_cmp_forward(const NsaCmpForwardParams& p, cudaStream_t stream) {
  if (!tensor_core_path(p.dtype, p.sz, {p.q, p.k, p.v, p.out})) return simt_cmp_forward(p, stream);
  const float scale_log2 = static_cast<float>(p.scale) * kLog2e;
  const dim3 grid(static_cast<unsigned>(ceil_div(p.sz.seq * (p.sz.heads_q / p.sz.heads_kv), kRows)),
                  static_cast<unsigned>(p.sz.batch * p.sz.heads_kv));
  Status st{};
  dispatch_dims(p.sz.dim_k, p.sz.dim_v, [&]<int DK, int DV>() {
    auto kernel = cmp_forward_kernel<DK, DV>;
    st = allow_smem(kernel, FwdSmem<DK, DV>::kBytes);
    if (!st.ok()) return;
    kernel<<<grid, kThreads, FwdSmem<DK, DV>::kBytes, stream>>>(
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

Status launch_nsa_cmp_backward(const NsaBackwardParams& p, cudaStream_t stream) {
  const CmpBackwardLayout ws = cmp_backward_layout(p);
  if (!tensor_core_path(p)) {
    if (Status s = row_delta<double>(p, ws.delta64, stream); !s.ok()) return s;
    return simt_cmp_backward(p, ws.delta64, stream);
  }
  if (Status s = row_delta<float>(p, ws.delta, stream); !s.ok()) return s;
  const float scale_log2 = static_cast<float>(p.scale) * kLog2e, scale = static_cast<float>(p.scale);
  const unsigned bh = static_cast<unsigned>(p.sz.batch * p.sz.heads_kv);
  const CmpChunks plan = plan_chunks(p.sz, p.geo);
  Status st{};
  dispatch_dims(p.sz.dim_k, p.sz.dim_v, [&]<int DK, int DV>() {
    const auto* dout = static_cast<const bf16_t*>(p.dout);
    const auto* q = static_cast<const bf16_t*>(p.q);
    const auto* k = static_cast<const bf16_t*>(p.k);
    const auto* v = static_cast<const bf16_t*>(p.v);
    const auto* lse = static_cast<const float*>(p.lse);
    auto* dk = static_cast<bf16_t*>(p.dk);
    auto* dv = static_cast<bf16_t*>(p.dv);
    auto dq_kernel = cmp_dq_kernel<DK, DV>;
    if (st = allow_smem(dq_kernel, DqSmem<DK, DV>::kBytes); !st.ok()) return;
    const dim3 dq_grid(static_cast<unsigned>(ceil_div(p.sz.seq * (p.sz.heads_q / p.sz.heads_kv), kRows)), bh);
    dq_kernel<<<dq_grid, kThreads, DqSmem<DK, DV>::kBytes, stream>>>(
        dout, q, k, v, lse, ws.delta, static_cast<bf16_t*>(p.dq), p.sz, p.geo, scale_log2, scale);
    if (st = last_launch(); !st.ok() || plan.n_kt == 0) return;
    auto dkdv_kernel = cmp_dkdv_kernel<DK, DV>;
    if (st = allow_smem(dkdv_kernel, DkvSmem<DK, DV>::kBytes); !st.ok()) return;
    const dim3 grid(static_cast<unsigned>(plan.max_chunks), static_cast<unsigned>(plan.n_kt), bh);
    dkdv_kernel<<<grid, kThreads, DkvSmem<DK, DV>::kBytes, stream>>>(
        dout, q, k, v, lse, ws.delta, dk, dv, ws.partial, p.sz, p.geo, scale_log2, scale, plan);
    if (st = last_launch(); !st.ok() || plan.max_chunks <= 1) return;
    cmp_reduce_kernel<DK, DV><<<dim3(static_cast<unsigned>(plan.n_kt), bh), 256, 0, stream>>>(
        ws.partial, dk, dv, p.sz, p.geo, plan);
    st = last_launch();
  });
  return st;
}

}  // namespace nsa::kernels
