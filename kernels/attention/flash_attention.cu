// Flash attention forward (FlashAttention-2 scheme on mma.sync) and the shared launcher checks.
//
// One CTA per (64-query tile, kHeads query heads of one KV group, batch): kHeads = 2 when the group size
// allows, so each K/V tile is brought into shared memory once for two heads (GQA-aware). Warp w handles
// 16 query rows of head w / 4: its Q fragments stay in registers for the whole KV loop, its S = Q·Kᵀ
// (16 × 64) and O (16 × D) accumulators are f32 registers. KV tiles of 64 keys are double-buffered with
// cp.async: tile j − 1 is in flight while tile j is multiplied. Tiles are visited from the diagonal
// downwards and only those the causal / window mask leaves partly visible are visited at all; the mask is
// applied element-wise only on tiles that cross the diagonal or the window's edge.
//
// Softmax runs in the log2 domain: x = scale·log2(e)·q·k, p = 2^(x − m) with m the running row max,
// rows rescaled by 2^(m_old − m_new) when the max grows; lse = (m + log2 Σp)·ln 2.
// Invariant: the first tile visited holds each valid row's own key (s = t), so a row's max is finite after
// it; padded rows (t >= T) read zero-filled Q/K/V and are never written.
#include <atomic>
#include <cmath>

#include "kernels/attention/flash_attention.h"
#include "kernels/attention/flash_tiles.cuh"
#include "kernels/attention/group_attention.h"

namespace nsa::kernels {

bool flash_attention_supported(ScalarType dtype, int64_t dim_k, int64_t dim_v) {
  return dtype == ScalarType::bf16 && dim_k == dim_v && (dim_k == 64 || dim_k == 128);
}

bool flash_operand_ok(const void* ptr, const BthStrides& s) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && s.batch % 8 == 0 && s.seq % 8 == 0 && s.head % 8 == 0;
}

namespace {

using namespace flash;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int D, int kHeads>
struct ForwardTiles {
  static constexpr int kTokens = 64;  // query rows of one head per CTA
  static constexpr int kKeys = 64;    // keys per KV tile
  static constexpr int kWarpsPerHead = kTokens / 16;
  static constexpr int kThreads = 32 * kWarpsPerHead * kHeads;
  static constexpr int kQ = kHeads * kTokens * D;  // elements of the Q tile (later the O staging tile)
  static constexpr int kKV = kKeys * D;            // elements of one K or V stage
  static constexpr size_t kSmem = static_cast<size_t>(kQ + 4 * kKV) * sizeof(bf16);
  static_assert(kKeys % 16 == 0 && kTokens % 16 == 0 && D % 16 == 0);
};

template <int D, int kHeads>
__global__ void __launch_bounds__(ForwardTiles<D, kHeads>::kThreads)
    flash_forward_kernel(const FlashForwardParams p, int window, int slices) {
  using Tiles = ForwardTiles<D, kHeads>;
  constexpr int kTokens = Tiles::kTokens, kKeys = Tiles::kKeys, kThreads = Tiles::kThreads;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sk = sq + Tiles::kQ;       // 2 stages
  bf16* sv = sk + 2 * Tiles::kKV;  // 2 stages

  const FlashAttentionShape& z = p.shape;
  const int seq = static_cast<int>(z.seq);
  const QueryTile<kTokens, kKeys, kHeads> where(slices, window, seq,
                                                static_cast<int>(z.heads_q / z.heads_kv));
  const int b = where.b, h0 = where.h0, kv_head = where.kv_head, t0 = where.t0;
  const int first = where.first, last = where.last;
  const CausalWindow mask{window};

  const bf16* q =
      static_cast<const bf16*>(p.q) + b * p.q_strides.batch + t0 * p.q_strides.seq + h0 * p.q_strides.head;
  const bf16* k = static_cast<const bf16*>(p.k) + b * p.k_strides.batch + kv_head * p.k_strides.head;
  const bf16* v = static_cast<const bf16*>(p.v) + b * p.v_strides.batch + kv_head * p.v_strides.head;
  auto load_kv = [&](int j, int stage) {
    const int s0 = j * kKeys;
    copy_tile_async<kKeys, D, kThreads>(sk + stage * Tiles::kKV, k + s0 * p.k_strides.seq, p.k_strides.seq,
                                        seq - s0);
    copy_tile_async<kKeys, D, kThreads>(sv + stage * Tiles::kKV, v + s0 * p.v_strides.seq, p.v_strides.seq,
                                        seq - s0);
  };
#pragma unroll
  for (int hh = 0; hh < kHeads; ++hh)
    copy_tile_async<kTokens, D, kThreads>(sq + hh * kTokens * D, q + hh * p.q_strides.head, p.q_strides.seq,
                                          seq - t0);
  load_kv(last, 0);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const LaneRoles l(lane);
  const int head = warp / Tiles::kWarpsPerHead;         // within the CTA
  const int row0 = (warp % Tiles::kWarpsPerHead) * 16;  // first query row of the warp within the tile
  const int q_row0 = head * kTokens + row0;             // ... within sq
  const int tq = t0 + row0;                             // its query position
  const int t_lo = tq + l.group, t_hi = t_lo + 8;       // the two rows this lane holds
  const float c = z.scale * kLog2e;

  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m_lo = -INFINITY, m_hi = -INFINITY, sum_lo = 0.f, sum_hi = 0.f;

  int stage = 0;
  for (int j = last; j >= first; --j, stage ^= 1) {
    cp_async_wait<0>();
    __syncthreads();  // tile j visible to all; every warp is done with the other stage
    if (j == last) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) load_a<D>(qf[kk], sq, q_row0, kk, l);
    }
    if (j > first) load_kv(j - 1, stage ^ 1);
    cp_async_commit();
    const bf16* kt = sk + stage * Tiles::kKV;
    const bf16* vt = sv + stage * Tiles::kKV;

    // S = Q·Kᵀ, 16 × 64 per warp.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int nn = 0; nn < kKeys / 16; ++nn) {
        uint32_t kb[4];
        load_b_rows<D>(kb, kt, 16 * nn, kk, l);
        mma_bf16(s[2 * nn], qf[kk], kb[0], kb[1]);
        mma_bf16(s[2 * nn + 1], qf[kk], kb[2], kb[3]);
      }
    }

    // Scale into the log2 domain; hide what the mask hides.
    const int s0 = j * kKeys;
    if (mask.all_visible(tq, tq + 15, s0, s0 + kKeys - 1)) {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
        for (int r = 0; r < 4; ++r) s[n][r] *= c;
    } else {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int key = s0 + 8 * n + 2 * l.quad + (r & 1);
          s[n][r] = mask.visible(r < 2 ? t_lo : t_hi, key) ? s[n][r] * c : -INFINITY;
        }
    }

    // Online softmax: new row max, rescale of the running sum and of O.
    float mx_lo = m_lo, mx_hi = m_hi;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      mx_lo = fmaxf(mx_lo, fmaxf(s[n][0], s[n][1]));
      mx_hi = fmaxf(mx_hi, fmaxf(s[n][2], s[n][3]));
    }
    mx_lo = quad_max(mx_lo);
    mx_hi = quad_max(mx_hi);
    const float base_lo = mx_lo == -INFINITY ? 0.f : mx_lo;  // a row that saw no key yet stays at 0
    const float base_hi = mx_hi == -INFINITY ? 0.f : mx_hi;
    const float alpha_lo = exp2f(m_lo - base_lo), alpha_hi = exp2f(m_hi - base_hi);
    m_lo = mx_lo;
    m_hi = mx_hi;
    float add_lo = 0.f, add_hi = 0.f;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = exp2f(s[n][0] - base_lo);
      s[n][1] = exp2f(s[n][1] - base_lo);
      s[n][2] = exp2f(s[n][2] - base_hi);
      s[n][3] = exp2f(s[n][3] - base_hi);
      add_lo += s[n][0] + s[n][1];
      add_hi += s[n][2] + s[n][3];
    }
    sum_lo = sum_lo * alpha_lo + add_lo;  // per-lane partial sums: the quad shares alpha
    sum_hi = sum_hi * alpha_hi + add_hi;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      o[n][0] *= alpha_lo;
      o[n][1] *= alpha_lo;
      o[n][2] *= alpha_hi;
      o[n][3] *= alpha_hi;
    }

    // O += P·V: the S accumulator, rounded to bf16, is the A operand.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[4];
      acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int nn = 0; nn < D / 16; ++nn) {
        uint32_t vb[4];
        load_b_cols<D>(vb, vt, 16 * kk, nn, l);
        mma_bf16(o[2 * nn], a, vb[0], vb[1]);
        mma_bf16(o[2 * nn + 1], a, vb[2], vb[3]);
      }
    }
  }

  sum_lo = quad_sum(sum_lo);
  sum_hi = quad_sum(sum_hi);
  const int h = h0 + head;
  if (l.quad == 0) {
    float* lse = p.lse + (static_cast<int64_t>(b) * z.heads_q + h) * z.seq;
    if (t_lo < seq) lse[t_lo] = (m_lo + log2f(sum_lo)) * kLn2;
    if (t_hi < seq) lse[t_hi] = (m_hi + log2f(sum_hi)) * kLn2;
  }
  // O / Σp through this warp's own rows of the Q tile (read only by this warp, long done) to 16-byte stores.
  store_acc_rows<D>(sq, q_row0, o, sum_lo > 0.f ? 1.f / sum_lo : 0.f, sum_hi > 0.f ? 1.f / sum_hi : 0.f, l);
  __syncwarp();
  bf16* out =
      static_cast<bf16*>(p.out) + b * p.out_strides.batch + tq * p.out_strides.seq + h * p.out_strides.head;
  write_rows<D>(out, p.out_strides.seq, sq, q_row0, seq - tq, lane);
}

template <int D, int kHeads>
Status launch_forward(const FlashForwardParams& p, int window, cudaStream_t stream) {
  using Tiles = ForwardTiles<D, kHeads>;
  const auto kernel = flash_forward_kernel<D, kHeads>;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(Tiles::kSmem));
  if (e != cudaSuccess) return {e, "flash_attention_forward: shared memory request refused"};
  const int64_t tiles = (p.shape.seq + Tiles::kTokens - 1) / Tiles::kTokens;
  const int slices = static_cast<int>(p.shape.heads_q / kHeads);
  const dim3 grid(static_cast<unsigned>(tiles * slices), static_cast<unsigned>(p.shape.batch));
  kernel<<<grid, Tiles::kThreads, Tiles::kSmem, stream>>>(p, window, slices);
  return last_launch();
}

}  // namespace

// Shared by both launchers: the shape limits of the grids and of the int positions used in the kernels.
const char* flash_shape_error(const FlashAttentionShape& z) {
  if (z.head_dim != 64 && z.head_dim != 128) return "flash_attention: head dim must be 64 or 128";
  if (z.heads_kv <= 0 || z.heads_q % z.heads_kv != 0) return "flash_attention: Hq must be a multiple of Hkv";
  if (z.seq <= 0 || z.batch <= 0) return "flash_attention: empty input";
  if (z.seq > (int64_t{1} << 30) || z.batch > 65535 || z.heads_kv > 65535 ||
      (z.seq + 63) / 64 * z.heads_q > 0x7fffffff)
    return "flash_attention: sizes beyond the grid limits";
  return nullptr;
}

// A window >= T sees everything a causal row sees: pass it as unlimited, so positions stay in int range.
namespace {
std::atomic<FlashKernel> g_kernel{FlashKernel::automatic};
}  // namespace
void set_flash_kernel(FlashKernel choice) { g_kernel.store(choice); }
FlashKernel flash_kernel() { return g_kernel.load(); }

int flash_window(const FlashAttentionShape& z) {
  return (z.window <= 0 || z.window >= z.seq) ? 0 : static_cast<int>(z.window);
}

Status launch_flash_attention_forward(const FlashForwardParams& p, cudaStream_t stream) {
  if (const char* err = flash_shape_error(p.shape)) return invalid(err);
  if (!flash_operand_ok(p.q, p.q_strides) || !flash_operand_ok(p.k, p.k_strides) ||
      !flash_operand_ok(p.v, p.v_strides) || !flash_operand_ok(p.out, p.out_strides))
    return invalid("flash_attention_forward: operands must be 16-byte aligned with strides multiple of 8");
  if (flash_kernel() == FlashKernel::automatic && group_attention_ok(p))
    return launch_group_attention_forward(p, stream);
  const int window = flash_window(p.shape);
  const bool pairs = (p.shape.heads_q / p.shape.heads_kv) % 2 == 0;
  if (p.shape.head_dim == 64)
    return pairs ? launch_forward<64, 2>(p, window, stream) : launch_forward<64, 1>(p, window, stream);
  return pairs ? launch_forward<128, 2>(p, window, stream) : launch_forward<128, 1>(p, window, stream);
}

}  // namespace nsa::kernels
