// Register-tiled f32 GEMM (see gemm_packed.h for the numerics).
//
// Layout of the work: the output is cut into tasks of mc × nc elements (whole micro-tiles), spread over the
// pool; a task walks k in blocks of kc, and for each block the NR-wide column panels of B (outer: a panel
// stays in L1) and the MR-row panels of A (inner: from L2). A micro-kernel holds an MR × NR tile of sums
// in vector registers, broadcasting one element of A against NR/W vectors of B per step of k. Partial
// sums between k blocks live in a per-thread scratch tile (an f32 store and reload: the order of the sum
// is unchanged). A is read in place (row- or column-major); a row-major B is read in place too unless its
// rows are far apart, otherwise (and always when transposed) it is packed once per call into panels of
// k rows × NR floats. Ragged last panels (m % MR, n % NR) are packed per task with zero padding.
//
// Instruction sets: the same templates are inlined (always_inline) into one function per target
// (portable SSE2 / avx2+fma / avx512), chosen at run time from __builtin_cpu_supports, so the library still
// runs on any x86-64. This file is built with -ffp-contract=fast (src/CMakeLists.txt): in the avx2 and
// avx512 kernels `acc += a * b` becomes one fused multiply-add; the order of the sum is fixed either way.
#include "ops/cpu/gemm_packed.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Grow-only float buffer aligned to a cache line, so packed panels never split a vector load.
class AlignedFloats {
 public:
  float* get(int64_t count) {
    if (count > capacity_) {
      const auto bytes = static_cast<size_t>(round_up(count * static_cast<int64_t>(sizeof(float)), 64));
      data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      NSA_CHECK(data_ != nullptr, "[matmul] could not allocate a ", bytes, "-byte GEMM buffer");
      capacity_ = count;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  int64_t capacity_ = 0;
};

// W floats as one GCC vector (an alias template would silently drop the attribute; a member typedef keeps
// it).
template <int W>
struct VecOf {
  typedef float type __attribute__((vector_size(W * sizeof(float))));
  static_assert(sizeof(type) == W * sizeof(float));
};
template <int W>
using Vec = typename VecOf<W>::type;

// A micro-kernel's register tile: MR rows of A times NR = NV·W columns of B, W floats per vector.
template <int W_, int MR_, int NV_>
struct Tiling {
  static constexpr int W = W_;
  static constexpr int MR = MR_;
  static constexpr int NV = NV_;
  static constexpr int NR = W_ * NV_;
};
// Register budgets: SSE2 has 16 xmm and no FMA (a product needs a temporary): 8 sums; avx2: 16 ymm, 12
// sums + 2 B vectors + 1 broadcast; avx512: 32 zmm, 24 sums + 2 + 1.
using PortableTiling = Tiling<4, 4, 2>;
using Avx2Tiling = Tiling<8, 6, 2>;
using Avx512Tiling = Tiling<16, 12, 2>;

// One f32 GEMM on raw pointers, with the work split decided.
struct Plan {
  const float* a = nullptr;  // op(A)(i, p) at a[i·lda + p] when a_row_major, else a[p·lda + i]
  int64_t lda = 0, stride_a = 0;
  bool a_row_major = true;
  // op(B): packed (per batch entry ceil(n / NR) panels of k × NR; stride 0 when B is broadcast), or read
  // in place when row-major (op(B)(p, j) at b[p·ldb + j]) with a ragged last panel packed per task.
  bool b_in_place = false;
  const float* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  const float* b_packed = nullptr;
  int64_t b_packed_stride = 0;
  float* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int64_t mc = 0, nc = 0, kc = 0;  // task rows (multiple of MR), task columns (multiple of NR), k block
  int64_t m_blocks = 0, n_blocks = 0;
  double alpha = 1.0, beta = 0.0;
  bool plain = true;  // alpha == 1 and beta == 0: sums are stored as they are
};

// Packs columns [j0, j0 + cols) of op(B) (op(B)(p, j) at b[p·ldb + j], or b[j·ldb + p] when trans_b) as k
// rows of nr floats, zero beyond cols.
void pack_b_panel(const float* b, int64_t ldb, bool trans_b, int64_t k, int64_t j0, int64_t cols, int64_t nr,
                  float* dst) {
  if (!trans_b) {
    for (int64_t p = 0; p < k; ++p) {
      const float* src = b + p * ldb + j0;
      for (int64_t j = 0; j < cols; ++j) dst[p * nr + j] = src[j];
      for (int64_t j = cols; j < nr; ++j) dst[p * nr + j] = 0.0f;
    }
  } else {
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = b + (j0 + j) * ldb;
      for (int64_t p = 0; p < k; ++p) dst[p * nr + j] = src[p];
    }
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t j = cols; j < nr; ++j) dst[p * nr + j] = 0.0f;
    }
  }
}

// out = alpha·sum + beta·out in double, rounded once (beta == 0: out is not read). Not inlined into the
// vector kernels: compiled for the base instruction set, it never fuses, whichever kernel calls it.
[[gnu::noinline]] void write_tile(const Plan& plan, float* c, const float* tile, int64_t tile_ld,
                                  int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      float* dst = c + r * plan.ldc + j;
      double v = plan.alpha * static_cast<double>(tile[r * tile_ld + j]);
      if (plan.beta != 0.0) v += plan.beta * static_cast<double>(*dst);
      *dst = static_cast<float>(v);
    }
  }
}

// One MR × NR tile over kc values of k. a: the tile's first element of A (stride lda between rows when
// kARowMajor, else between k steps); b: kc rows of NR floats, ldb apart. sums_in: partial sums to continue
// from (null: start from 0); sums_out: where partial sums go (null: this is the last k block, write c).
template <class T, bool kARowMajor>
[[gnu::always_inline]] inline void micro_tile(const Plan& plan, int64_t kc, const float* a, int64_t lda,
                                              const float* b, int64_t ldb, const float* sums_in,
                                              float* sums_out, int64_t sums_ld, float* c, int64_t rows,
                                              int64_t cols) {
  using V = Vec<T::W>;
  constexpr int MR = T::MR, NV = T::NV, W = T::W, NR = T::NR;
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) {
      if (sums_in != nullptr) {
        std::memcpy(&acc[r][v], sums_in + r * sums_ld + v * W, sizeof(V));
      } else {
        acc[r][v] = V{};
      }
    }
  }
  if constexpr (kARowMajor) {
    const float* row[MR];
    for (int r = 0; r < MR; ++r) row[r] = a + r * lda;
    for (int64_t p = 0; p < kc; ++p) {
      V bv[NV];
      for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + p * ldb + v * W, sizeof(V));
      for (int r = 0; r < MR; ++r) {
        const float x = row[r][p];
        for (int v = 0; v < NV; ++v) acc[r][v] += x * bv[v];
      }
    }
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      V bv[NV];
      for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + p * ldb + v * W, sizeof(V));
      const float* ap = a + p * lda;
      for (int r = 0; r < MR; ++r) {
        const float x = ap[r];
        for (int v = 0; v < NV; ++v) acc[r][v] += x * bv[v];
      }
    }
  }
  if (sums_out != nullptr) {
    for (int r = 0; r < MR; ++r) {
      for (int v = 0; v < NV; ++v) std::memcpy(sums_out + r * sums_ld + v * W, &acc[r][v], sizeof(V));
    }
    return;
  }
  if (plan.plain && rows == MR && cols == NR) {
    for (int r = 0; r < MR; ++r) {
      for (int v = 0; v < NV; ++v) std::memcpy(c + r * plan.ldc + v * W, &acc[r][v], sizeof(V));
    }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) std::memcpy(tile + r * NR + v * W, &acc[r][v], sizeof(V));
  }
  write_tile(plan, c, tile, NR, rows, cols);
}

// Runs tasks [begin, end) of the plan (task = batch entry × row block × column block).
template <class T>
[[gnu::always_inline]] inline void run_tasks(const Plan& plan, int64_t begin, int64_t end) {
  constexpr int MR = T::MR, NR = T::NR;
  thread_local AlignedFloats scratch_buffer, edge_buffer, b_edge_buffer;
  const int64_t k_blocks = ceil_div(plan.k, plan.kc);
  float* scratch = k_blocks > 1 ? scratch_buffer.get(plan.mc * plan.nc) : nullptr;
  const int64_t m_full = plan.m / MR * MR;  // rows below it form whole MR panels, read in place
  const int64_t n_full = plan.n / NR * NR;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t nb = t % plan.n_blocks, mb = t / plan.n_blocks % plan.m_blocks;
    const int64_t bt = t / (plan.n_blocks * plan.m_blocks);
    const int64_t i0 = mb * plan.mc, i1 = std::min(plan.m, i0 + plan.mc);
    const int64_t j0 = nb * plan.nc, j1 = std::min(plan.n, j0 + plan.nc);
    const float* a = plan.a + bt * plan.stride_a;
    const float* b =
        plan.b_in_place ? plan.b + bt * plan.stride_b : plan.b_packed + bt * plan.b_packed_stride;
    float* c = plan.c + bt * plan.stride_c;
    const float* b_edge = nullptr;  // in-place B: its ragged last panel, packed
    if (plan.b_in_place && j1 > n_full) {
      float* e = b_edge_buffer.get(NR * plan.k);
      pack_b_panel(b, plan.ldb, false, plan.k, n_full, plan.n - n_full, NR, e);
      b_edge = e;
    }
    // The ragged last row panel: packed k-major with zero rows (as A read transposed, lda = MR).
    const float* edge = nullptr;
    if (i1 > m_full) {
      float* e = edge_buffer.get(MR * plan.k);
      for (int64_t p = 0; p < plan.k; ++p) {
        for (int64_t r = 0; r < MR; ++r) {
          const int64_t i = m_full + r;
          e[p * MR + r] = i >= plan.m ? 0.0f : plan.a_row_major ? a[i * plan.lda + p] : a[p * plan.lda + i];
        }
      }
      edge = e;
    }
    for (int64_t kb = 0; kb < k_blocks; ++kb) {
      const int64_t k0 = kb * plan.kc, kc = std::min(plan.k, k0 + plan.kc) - k0;
      const bool first = kb == 0, last = kb == k_blocks - 1;
      for (int64_t j = j0; j < j1; j += NR) {
        const float* panel = !plan.b_in_place ? b + (j / NR) * plan.k * NR + k0 * NR
                             : j < n_full     ? b + k0 * plan.ldb + j
                                              : b_edge + k0 * NR;
        const int64_t ldb = plan.b_in_place && j < n_full ? plan.ldb : NR;
        const int64_t cols = std::min<int64_t>(NR, plan.n - j);
        for (int64_t i = i0; i < i1; i += MR) {
          const int64_t rows = std::min<int64_t>(MR, plan.m - i);
          float* sums = scratch != nullptr ? scratch + (i - i0) * plan.nc + (j - j0) : nullptr;
          const float* sums_in = first ? nullptr : sums;
          float* sums_out = last ? nullptr : sums;
          float* cij = c + i * plan.ldc + j;
          if (i >= m_full) {
            micro_tile<T, false>(plan, kc, edge + k0 * MR, MR, panel, ldb, sums_in, sums_out, plan.nc, cij,
                                 rows, cols);
          } else if (plan.a_row_major) {
            micro_tile<T, true>(plan, kc, a + i * plan.lda + k0, plan.lda, panel, ldb, sums_in, sums_out,
                                plan.nc, cij, rows, cols);
          } else {
            micro_tile<T, false>(plan, kc, a + k0 * plan.lda + i, plan.lda, panel, ldb, sums_in, sums_out,
                                 plan.nc, cij, rows, cols);
          }
        }
      }
    }
  }
}

void run_portable(const Plan& plan, int64_t begin, int64_t end) {
  run_tasks<PortableTiling>(plan, begin, end);
}

#if defined(__x86_64__)
[[gnu::target("avx2,fma")]] void run_avx2(const Plan& plan, int64_t begin, int64_t end) {
  run_tasks<Avx2Tiling>(plan, begin, end);
}

[[gnu::target("avx512f,avx512vl,avx2,fma")]] void run_avx512(const Plan& plan, int64_t begin, int64_t end) {
  run_tasks<Avx512Tiling>(plan, begin, end);
}
#endif

struct KernelEntry {
  int mr, nr;
  void (*run)(const Plan&, int64_t, int64_t);
};

KernelEntry kernel_entry(GemmKernel kernel) {
  switch (kernel) {
#if defined(__x86_64__)
    case GemmKernel::avx2:
      return {Avx2Tiling::MR, Avx2Tiling::NR, run_avx2};
    case GemmKernel::avx512:
      return {Avx512Tiling::MR, Avx512Tiling::NR, run_avx512};
#endif
    default:
      return {PortableTiling::MR, PortableTiling::NR, run_portable};
  }
}

// Block sizes: k blocks of kKBlock (flat between 128 and 512 in measurements on avx2 and avx512); the task
// grid (row blocks × column blocks) is the one whose busiest thread has the fewest micro-tiles, ties going to
// fewer, larger tasks. Blocks never change results (see the header), only speed.
constexpr int64_t kKBlock = 256;

void choose_blocks(Plan& plan, int mr, int nr, int threads) {
  plan.kc = std::min<int64_t>(plan.k, kKBlock);
  const int64_t m_tiles = ceil_div(plan.m, mr), n_tiles = ceil_div(plan.n, nr);
  const int64_t mc_max_tiles = std::max<int64_t>(1, 128 / mr), nc_max_tiles = std::max<int64_t>(1, 512 / nr);
  const int64_t mb_min = ceil_div(m_tiles, mc_max_tiles), nb_min = ceil_div(n_tiles, nc_max_tiles);
  int64_t best_cost = -1;
  for (int64_t mb = mb_min; mb <= std::min(m_tiles, mb_min * 8); ++mb) {
    for (int64_t nb = nb_min; nb <= std::min(n_tiles, nb_min * 8); ++nb) {
      const int64_t mt = ceil_div(m_tiles, mb), nt = ceil_div(n_tiles, nb);
      const int64_t tasks = plan.batch * ceil_div(m_tiles, mt) * ceil_div(n_tiles, nt);
      const int64_t cost = ceil_div(tasks, threads) * (mt * nt + 2);  // + 2: a task's fixed overhead
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        plan.mc = mt * mr;
        plan.nc = nt * nr;
      }
    }
  }
  plan.m_blocks = ceil_div(plan.m, plan.mc);
  plan.n_blocks = ceil_div(plan.n, plan.nc);
}

// The f32 GEMM on raw pointers (the GemmArgs fields, with a/b/c typed).
struct F32Gemm {
  const float* a = nullptr;
  const float* b = nullptr;
  float* c = nullptr;
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0, stride_a = 0, stride_b = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;
};

void gemm_f32(const F32Gemm& g, GemmKernel kernel) {
  const KernelEntry entry = kernel_entry(kernel);
  Plan plan;
  plan.a = g.a;
  plan.lda = g.lda;
  plan.stride_a = g.stride_a;
  plan.a_row_major = !g.trans_a;
  // A row-major B is read in place (measured: as fast as packed, and packing a large B, the dY of a weight
  // gradient, costs a pass over memory) unless its rows are 4 KiB or more apart (each row then a new page,
  // where the hardware prefetcher stops) and enough rows of A reuse a packed panel. A transposed B is packed.
  const int64_t rows_per_panel = g.stride_b == 0 ? g.batch * g.m : g.m;
  plan.b_in_place = !g.trans_b && (g.ldb < 1024 || rows_per_panel < 16 * entry.nr);
  plan.b = g.b;
  plan.ldb = g.ldb;
  plan.stride_b = g.stride_b;
  if (!plan.b_in_place) {
    const int64_t panels = ceil_div(g.n, entry.nr), panel_floats = g.k * entry.nr;
    const int64_t b_entries = g.stride_b == 0 ? 1 : g.batch;
    thread_local AlignedFloats packed_b_buffer;  // the caller's; workers fill and read it during this call
    float* packed = packed_b_buffer.get(b_entries * panels * panel_floats);
    parallel_for(b_entries * panels, std::max<int64_t>(1, 16384 / panel_floats),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t q = begin; q < end; ++q) {
                     const int64_t bt = q / panels, j0 = q % panels * entry.nr;
                     pack_b_panel(g.b + bt * g.stride_b, g.ldb, g.trans_b, g.k, j0,
                                  std::min<int64_t>(entry.nr, g.n - j0), entry.nr, packed + q * panel_floats);
                   }
                 });
    plan.b_packed = packed;
    plan.b_packed_stride = g.stride_b == 0 ? 0 : panels * panel_floats;
  }
  plan.c = g.c;
  plan.ldc = g.ldc;
  plan.stride_c = g.stride_c;
  plan.batch = g.batch;
  plan.m = g.m;
  plan.n = g.n;
  plan.k = g.k;
  plan.alpha = g.alpha;
  plan.beta = g.beta;
  plan.plain = g.alpha == 1.0 && g.beta == 0.0;
  // Below ~1 MFLOP a wake-up of the pool costs more than it saves.
  const double flops = 2.0 * static_cast<double>(g.batch) * static_cast<double>(g.m) *
                       static_cast<double>(g.n) * static_cast<double>(g.k);
  const int threads = flops < 1e6 ? 1 : num_threads();
  choose_blocks(plan, entry.mr, entry.nr, threads);
  const int64_t tasks = plan.batch * plan.m_blocks * plan.n_blocks;
  parallel_for(tasks, threads == 1 ? tasks : 1,
               [&](int64_t begin, int64_t end) { entry.run(plan, begin, end); });
}

// bf16: op(A), op(B) and (for beta != 0) out copied to f32 arrays, the f32 GEMM, one rounding to bf16.
void gemm_bf16(const GemmArgs& g, GemmKernel kernel) {
  const bf16* a = static_cast<const bf16*>(g.a.data_ptr());
  const bf16* b = static_cast<const bf16*>(g.b.data_ptr());
  bf16* c = static_cast<bf16*>(g.out.data_ptr());
  const int64_t a_entries = g.stride_a == 0 ? 1 : g.batch, b_entries = g.stride_b == 0 ? 1 : g.batch;
  std::vector<float> af(static_cast<size_t>(a_entries * g.m * g.k));
  std::vector<float> bf(static_cast<size_t>(b_entries * g.k * g.n));
  std::vector<float> cf(static_cast<size_t>(g.batch * g.m * g.n));
  for (int64_t bt = 0; bt < a_entries; ++bt) {
    for (int64_t i = 0; i < g.m; ++i) {
      for (int64_t p = 0; p < g.k; ++p) {
        const bf16 v = a[bt * g.stride_a + (g.trans_a ? p * g.lda + i : i * g.lda + p)];
        af[static_cast<size_t>((bt * g.m + i) * g.k + p)] = static_cast<float>(v);
      }
    }
  }
  for (int64_t bt = 0; bt < b_entries; ++bt) {
    for (int64_t p = 0; p < g.k; ++p) {
      for (int64_t j = 0; j < g.n; ++j) {
        const bf16 v = b[bt * g.stride_b + (g.trans_b ? j * g.ldb + p : p * g.ldb + j)];
        bf[static_cast<size_t>((bt * g.k + p) * g.n + j)] = static_cast<float>(v);
      }
    }
  }
  auto c_at = [&](int64_t bt, int64_t i, int64_t j) -> bf16& { return c[bt * g.stride_c + i * g.ldc + j]; };
  if (g.beta != 0.0) {
    for (int64_t bt = 0; bt < g.batch; ++bt) {
      for (int64_t i = 0; i < g.m; ++i) {
        for (int64_t j = 0; j < g.n; ++j) {
          cf[static_cast<size_t>((bt * g.m + i) * g.n + j)] = static_cast<float>(c_at(bt, i, j));
        }
      }
    }
  }
  F32Gemm f;
  f.a = af.data();
  f.b = bf.data();
  f.c = cf.data();
  f.batch = g.batch;
  f.m = g.m;
  f.n = g.n;
  f.k = g.k;
  f.lda = g.k;
  f.ldb = g.n;
  f.ldc = g.n;
  f.stride_a = g.stride_a == 0 ? 0 : g.m * g.k;
  f.stride_b = g.stride_b == 0 ? 0 : g.k * g.n;
  f.stride_c = g.m * g.n;
  f.alpha = g.alpha;
  f.beta = g.beta;
  gemm_f32(f, kernel);
  for (int64_t bt = 0; bt < g.batch; ++bt) {
    for (int64_t i = 0; i < g.m; ++i) {
      for (int64_t j = 0; j < g.n; ++j)
        c_at(bt, i, j) = bf16(cf[static_cast<size_t>((bt * g.m + i) * g.n + j)]);
    }
  }
}

}  // namespace

const char* gemm_kernel_name(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::portable:
      return "portable";
    case GemmKernel::avx2:
      return "avx2";
    case GemmKernel::avx512:
      return "avx512";
  }
  return "?";
}

bool gemm_kernel_supported(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::portable:
      return true;
#if defined(__x86_64__)
    case GemmKernel::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmKernel::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default:
      return false;
  }
}

GemmKernel best_gemm_kernel() {
  static const GemmKernel best = [] {
    for (GemmKernel k : {GemmKernel::avx512, GemmKernel::avx2}) {
      if (gemm_kernel_supported(k)) return k;
    }
    return GemmKernel::portable;
  }();
  return best;
}

void gemm_packed(const GemmArgs& g, GemmKernel kernel) {
  NSA_CHECK(g.m > 0 && g.n > 0 && g.k > 0 && g.batch > 0,
            "[matmul] packed GEMM expects positive sizes, got m=", g.m, " n=", g.n, " k=", g.k,
            " batch=", g.batch);
  NSA_CHECK(gemm_kernel_supported(kernel), "[matmul] the ", gemm_kernel_name(kernel),
            " GEMM kernel does not run on this CPU");
  if (g.out.dtype() == DType::bf16) {
    gemm_bf16(g, kernel);
    return;
  }
  NSA_CHECK(g.out.dtype() == DType::f32, "[matmul] packed GEMM expects f32 or bf16, got ",
            dtype_name(g.out.dtype()));
  F32Gemm f;
  f.a = static_cast<const float*>(g.a.data_ptr());
  f.b = static_cast<const float*>(g.b.data_ptr());
  f.c = static_cast<float*>(g.out.data_ptr());
  f.trans_a = g.trans_a;
  f.trans_b = g.trans_b;
  f.batch = g.batch;
  f.m = g.m;
  f.n = g.n;
  f.k = g.k;
  f.lda = g.lda;
  f.ldb = g.ldb;
  f.ldc = g.ldc;
  f.stride_a = g.stride_a;
  f.stride_b = g.stride_b;
  f.stride_c = g.stride_c;
  f.alpha = g.alpha;
  f.beta = g.beta;
  gemm_f32(f, kernel);
}

}  // namespace nsa::cpu
