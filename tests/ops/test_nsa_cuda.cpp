// Native Sparse Attention on CUDA against the CPU reference (ops/nsa.h, kernels/nsa/): every primitive,
// forward and backward, in bf16 (tensor-core kernels, tolerance 1e-2) and f32 (CUDA-core path, 1e-5), on
// random inputs (never zeros) rounded to the tested dtype, so the CPU computes in f64 on the same values.
// Relative errors ‖gpu − cpu‖ / ‖cpu‖ are printed as "[nsa-cuda] <case> <what> rel=...".
//
// Shapes: the small geometry (l = 8, d = 4, l' = 16, n = 3, w = 16) at ragged T = 1, 15, 77, 130, 1000 with
// GQA groups of 1, 2, 4 and 16 query heads, head dims 64 and 128; the paper's geometry (l = 32, d = 16,
// l' = 64, n = 16) at T = 2000; group_cases() adds G = 3, 8, 32 and the paper geometry with G = 16 (T = 3001)
// for the compressed branch and the selection. The backward runs twice and must give the same bits (no
// atomics).
//
// Selection near-ties: the GPU sums importances in f32 (bf16) or in double in another order (f32), the CPU
// in double, so two blocks whose importances agree to rounding can swap. Both sides read the same inputs and
// the same lse; a row whose chosen blocks differ passes only if it is well formed (ascending, −1 padded,
// forced blocks present) and the total importance of its free picks equals the CPU's within 1e-4 (bf16) or
// 1e-9 (f32) relative, i.e. only blocks tied to that precision were exchanged. Differing rows are counted.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "ops/backend.h"  // check_device_errors
#include "test_util.h"
#ifdef NSA_WITH_CUDA
#include "kernels/nsa/nsa.h"  // set_slc_dq_kernel
#endif

namespace nsa::test {
namespace {

struct Geometry {
  int64_t l, d, lp, n, init, local, window;
};
constexpr Geometry kSmall{8, 4, 16, 3, 1, 1, 16};
constexpr Geometry kPaper{32, 16, 64, 16, 1, 2, 512};
// Selection blocks of 128 keys: two 64-key passes in the wgmma dK/dV kernel, so the selected branch's dQ
// comes from the query-side kernel instead of the dK/dV kernel's partials (one-pass blocks).
constexpr Geometry kLongBlocks{32, 16, 128, 5, 1, 1, 128};

NsaConfig config_of(const Geometry& g) {
  NsaConfig cfg;
  cfg.cmp_block = g.l;
  cfg.cmp_stride = g.d;
  cfg.slc_block = g.lp;
  cfg.slc_top_n = g.n;
  cfg.slc_init_blocks = g.init;
  cfg.slc_local_blocks = g.local;
  cfg.window = g.window;
  return cfg;
}

struct Case {
  Geometry geo;
  int64_t batch, seq, heads_q, heads_kv, dim_k, dim_v;
};

std::string name_of(const Case& c, DType dtype) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s %s T=%ld B=%ld Hq=%ld Hkv=%ld D=%ld/%ld", dtype_name(dtype),
                c.geo.lp == 64 ? "paper" : (c.geo.lp == 128 ? "l'=128" : "small"), static_cast<long>(c.seq),
                static_cast<long>(c.batch), static_cast<long>(c.heads_q), static_cast<long>(c.heads_kv),
                static_cast<long>(c.dim_k), static_cast<long>(c.dim_v));
  return buf;
}

// Ragged lengths with every group size at head dim 64, then the long cases.
std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t seq : {1, 15, 77, 130})
    for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{2, 2}, {4, 2}, {4, 1}, {16, 1}})
      out.push_back({kSmall, seq == 77 ? 2 : 1, seq, hq, hkv, 64, 64});
  out.push_back({kSmall, 1, 1000, 8, 2, 128, 128});
  out.push_back({kSmall, 1, 1000, 16, 1, 64, 64});
  out.push_back({kSmall, 1, 1000, 2, 2, 64, 64});
  out.push_back({kPaper, 1, 2000, 4, 1, 128, 128});
  return out;
}

// Group sizes the cases above miss, for the kernels that specialise on them: the selection's warp-owned
// kernel (G = 8, and G = 16 at the paper geometry, the benchmark's group), its general kernel (G = 3 and
// 32: a token's rows straddle warps), and the compressed forward's 128-row programs at ragged row counts.
std::vector<Case> group_cases() {
  return {{kSmall, 1, 515, 16, 2, 64, 64},
          {kSmall, 2, 77, 6, 2, 64, 64},
          {kSmall, 1, 300, 32, 1, 64, 64},
          {kPaper, 1, 3001, 16, 1, 128, 128}};
}

// The paper's split head dims (Dk = 192, Dv = 128: the 27B model's), which the tensor-core kernels take on
// their mma.sync paths (no wgmma at 192) with their own stage counts: small and paper geometry, G = 4 and 16.
std::vector<Case> wide_cases() {
  return {{kSmall, 2, 133, 8, 2, 192, 128}, {kPaper, 1, 1100, 16, 1, 192, 128}};
}

// Standard normal values representable in `dtype`, as an f64 CPU tensor.
Tensor rounded(const Dims& shape, DType dtype, Generator& gen) {
  return to(to(randn(shape, DType::f64, Device::cpu(), &gen), dtype), DType::f64);
}
Tensor on_gpu(const Tensor& x, DType dtype) { return to(x, Device::cuda(), dtype); }
Tensor to_host(const Tensor& t) { return to(t, Device::cpu(), DType::f64); }
Tensor leaf(const Tensor& t) { return detach(t).set_requires_grad(true); }

double tolerance(DType dtype) { return dtype == DType::bf16 ? 1e-2 : 1e-5; }

void expect_close(const std::string& name, const char* what, const Tensor& gpu, const Tensor& ref,
                  DType dtype, double tol = 0) {
  const double err = rel_error(to_host(gpu), ref);
  std::printf("[nsa-cuda] %s %s rel=%.2e\n", name.c_str(), what, err);
  EXPECT_LT(err, tol > 0 ? tol : tolerance(dtype)) << name << " " << what;
}

// lse: −inf at exactly the reference's −inf rows, the finite ones close.
void expect_lse_close(const std::string& name, const Tensor& gpu, const Tensor& ref, DType dtype) {
  const std::vector<double> a = to_vector<double>(to_host(gpu)), b = to_vector<double>(ref);
  ASSERT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  int64_t mismatched_inf = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(b[i]) || std::isinf(a[i])) {
      mismatched_inf += a[i] != b[i];
      continue;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  std::printf("[nsa-cuda] %s lse rel=%.2e\n", name.c_str(), err);
  EXPECT_EQ(mismatched_inf, 0) << name << ": rows without keys must have lse = -inf on both devices";
  EXPECT_LT(err, tolerance(dtype)) << name << " lse";
}

struct Grads {
  Tensor out, lse;
  std::vector<Tensor> grads;
};

// ---- compressed attention ----------------------------------------------------------------------------

Grads run_compressed(const Tensor& q, const Tensor& kc, const Tensor& vc, const Tensor& dout,
                     const NsaConfig& cfg) {
  Tensor lq = leaf(q), lk = leaf(kc), lv = leaf(vc);
  NsaCmpResult r = nsa_compressed_attention(lq, lk, lv, cfg);
  backward(r.out, dout);
  return {r.out, r.lse, {lq.grad(), lk.grad(), lv.grad()}};
}

void check_compressed(const Case& c, DType dtype, uint64_t seed) {
  const NsaConfig cfg = config_of(c.geo);
  const std::string name = name_of(c, dtype) + " cmp";
  Generator gen(seed);
  const int64_t nc = nsa_num_cmp_blocks(c.seq, cfg);
  const Tensor q = rounded({c.batch, c.seq, c.heads_q, c.dim_k}, dtype, gen);
  const Tensor kc = rounded({c.batch, nc, c.heads_kv, c.dim_k}, dtype, gen);
  const Tensor vc = rounded({c.batch, nc, c.heads_kv, c.dim_v}, dtype, gen);
  const Tensor dout = rounded({c.batch, c.seq, c.heads_q, c.dim_v}, dtype, gen);
  const Grads ref = run_compressed(q, kc, vc, dout, cfg);
  // The Hopper backward with one warpgroup per program (the default below 2^19 rows per KV head) and with
  // two (forced here: long sequences take it); the forward's default 4-stage ring, then its 3-stage one.
  for (const bool wide : {false, true}) {
#ifdef NSA_WITH_CUDA
    kernels::set_wide_backward_rows(wide ? 0 : -1);
    kernels::set_group_forward_sync(wide ? kernels::GroupForwardSync::ring3
                                         : kernels::GroupForwardSync::automatic);
#endif
    const std::string run = name + (wide ? " wide,ring3" : "");
    const Grads gpu =
        run_compressed(on_gpu(q, dtype), on_gpu(kc, dtype), on_gpu(vc, dtype), on_gpu(dout, dtype), cfg);
    expect_close(run, "out", gpu.out, ref.out, dtype);
    expect_lse_close(run, gpu.lse, ref.lse, dtype);
    expect_close(run, "dq", gpu.grads[0], ref.grads[0], dtype);
    if (nc > 0) {
      expect_close(run, "dkc", gpu.grads[1], ref.grads[1], dtype);
      expect_close(run, "dvc", gpu.grads[2], ref.grads[2], dtype);
    }
    const Grads again =
        run_compressed(on_gpu(q, dtype), on_gpu(kc, dtype), on_gpu(vc, dtype), on_gpu(dout, dtype), cfg);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(equal_values(gpu.grads[i], again.grads[i])) << run << " grad " << i;
  }
#ifdef NSA_WITH_CUDA
  kernels::set_wide_backward_rows(-1);
  kernels::set_group_forward_sync(kernels::GroupForwardSync::automatic);
#endif
}

// ---- selection -----------------------------------------------------------------------------------------

// Importance of every selection block for every (b, t, g) row, from eq. 9 written as overlaps and eq. 10.
std::vector<double> importances(const Tensor& q, const Tensor& kc, const Tensor& lse, const NsaConfig& cfg,
                                double scale) {
  const int64_t batch = q.size(0), seq = q.size(1), hq = q.size(2), dk = q.size(3), nc = kc.size(1);
  const int64_t hkv = kc.size(2), group = hq / hkv, n_slc = (seq + cfg.slc_block - 1) / cfg.slc_block;
  const std::vector<double> qd = to_vector<double>(q), kd = to_vector<double>(kc),
                            ld = to_vector<double>(lse);
  std::vector<double> imp(static_cast<size_t>(batch * seq * hkv * n_slc), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t h = 0; h < hq; ++h) {
        const int64_t g = h / group;
        double* row = &imp[((b * seq + t) * hkv + g) * n_slc];
        for (int64_t i = 0; i < nc && i * cfg.cmp_stride + cfg.cmp_block - 1 <= t; ++i) {
          double dot = 0;
          for (int64_t x = 0; x < dk; ++x)
            dot += qd[((b * seq + t) * hq + h) * dk + x] * kd[((b * nc + i) * hkv + g) * dk + x];
          const double p = std::exp(scale * dot - ld[(b * hq + h) * seq + t]);
          for (int64_t j = 0; j < n_slc; ++j) {
            const int64_t lo = std::max(i * cfg.cmp_stride, j * cfg.slc_block);
            const int64_t hi = std::min(i * cfg.cmp_stride + cfg.cmp_block, (j + 1) * cfg.slc_block);
            if (hi > lo) row[j] += p * static_cast<double>((hi - lo) / cfg.cmp_stride);
          }
        }
      }
  return imp;
}

void check_selection(const Case& c, DType dtype, uint64_t seed) {
  const NsaConfig cfg = config_of(c.geo);
  const std::string name = name_of(c, dtype) + " select";
  Generator gen(seed);
  const int64_t nc = nsa_num_cmp_blocks(c.seq, cfg), n = cfg.slc_top_n;
  const Tensor q = rounded({c.batch, c.seq, c.heads_q, c.dim_k}, dtype, gen);
  const Tensor kc = rounded({c.batch, nc, c.heads_kv, c.dim_k}, dtype, gen);
  const Tensor qg = on_gpu(q, dtype), kcg = on_gpu(kc, dtype);
  const Tensor lse = nsa_compressed_attention(qg, kcg, kcg, cfg).lse;  // f32 on the GPU
  const Tensor gpu = to_host(nsa_select_blocks(qg, kcg, lse, cfg));
  const Tensor lse64 = to_host(lse);
  const Tensor ref = to_host(nsa_select_blocks(q, kc, lse64, cfg));
  const std::vector<double> imp =
      importances(q, kc, lse64, cfg, 1.0 / std::sqrt(static_cast<double>(c.dim_k)));
  const std::vector<double> a = to_vector<double>(gpu), b = to_vector<double>(ref);
  const int64_t n_slc = (c.seq + cfg.slc_block - 1) / cfg.slc_block, rows = c.batch * c.seq * c.heads_kv;
  const double rel_tol = dtype == DType::bf16 ? 1e-4 : 1e-9;
  int64_t differing = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double* ga = &a[r * n];
    const double* cb = &b[r * n];
    if (std::equal(ga, ga + n, cb)) continue;
    ++differing;
    const int64_t t = (r / c.heads_kv) % c.seq, vis = t / cfg.slc_block + 1;
    const double* row_imp = &imp[r * n_slc];
    auto free_sum = [&](const double* sel, int64_t& count, bool& well_formed) {
      double sum = 0;
      count = 0;
      std::set<int64_t> seen;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t j = static_cast<int64_t>(sel[s]);
        if (j < 0) {
          for (int64_t s2 = s; s2 < n; ++s2) well_formed &= sel[s2] == -1;
          break;
        }
        well_formed &= j < vis && (s == 0 || sel[s - 1] < sel[s]);
        seen.insert(j);
        ++count;
        if (!(j < cfg.slc_init_blocks || j >= vis - cfg.slc_local_blocks)) sum += row_imp[j];
      }
      for (int64_t j = 0; j < vis; ++j)
        if (j < cfg.slc_init_blocks || j >= vis - cfg.slc_local_blocks) well_formed &= seen.count(j) == 1;
      return sum;
    };
    int64_t count_a = 0, count_b = 0;
    bool formed_a = true, formed_b = true;
    const double sum_a = free_sum(ga, count_a, formed_a), sum_b = free_sum(cb, count_b, formed_b);
    EXPECT_TRUE(formed_a) << name << ": malformed GPU row " << r;
    EXPECT_TRUE(formed_b) << name << ": malformed CPU row " << r;
    EXPECT_EQ(count_a, count_b) << name << " row " << r;
    EXPECT_NEAR(sum_a, sum_b, rel_tol * std::max(sum_b, 1e-30))
        << name << " row " << r << ": the GPU picked blocks of different importance";
  }
  std::printf("[nsa-cuda] %s rows differing (near-ties) %ld of %ld\n", name.c_str(),
              static_cast<long>(differing), static_cast<long>(rows));
}

// ---- selected attention --------------------------------------------------------------------------------

// A random selection: distinct blocks in [0, ceil(T / l')) (future ones too, which see nothing), the
// current block and block 0 usually among them, −1 for some slots, in random order.
Tensor random_indices(const Case& c, const NsaConfig& cfg, uint64_t seed, DType index_type) {
  std::mt19937_64 rng(seed);
  const int64_t n = cfg.slc_top_n, n_slc = (c.seq + cfg.slc_block - 1) / cfg.slc_block;
  std::vector<int64_t> idx(static_cast<size_t>(c.batch * c.seq * c.heads_kv * n), -1);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t t = 0; t < c.seq; ++t)
      for (int64_t g = 0; g < c.heads_kv; ++g) {
        std::vector<int64_t> pool;
        const int64_t cur = t / cfg.slc_block;
        if (rng() % 10 != 0) pool.push_back(cur);
        if (cur != 0 && rng() % 4 != 0) pool.push_back(0);
        std::vector<int64_t> others;
        for (int64_t j = 0; j < n_slc; ++j)
          if (j != cur && j != 0) others.push_back(j);
        std::shuffle(others.begin(), others.end(), rng);
        for (int64_t j : others) {
          if (static_cast<int64_t>(pool.size()) >= n) break;
          if (j <= cur + 1 || rng() % 3 == 0) pool.push_back(j);  // mostly visible blocks
        }
        if (pool.size() > 1 && rng() % 3 == 0) pool.pop_back();  // an empty slot
        std::shuffle(pool.begin(), pool.end(), rng);
        for (size_t s = 0; s < pool.size(); ++s) idx[((b * c.seq + t) * c.heads_kv + g) * n + s] = pool[s];
      }
  return to(from_vector<int64_t>(idx, {c.batch, c.seq, c.heads_kv, n}), index_type);
}

Grads run_selected(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& idx, const Tensor& dout,
                   const NsaConfig& cfg) {
  Tensor lq = leaf(q), lk = leaf(k), lv = leaf(v);
  Tensor out = nsa_selected_attention(lq, lk, lv, idx, cfg);
  backward(out, dout);
  return {out, Tensor(), {lq.grad(), lk.grad(), lv.grad()}};
}

void check_selected(const Case& c, DType dtype, uint64_t seed, DType index_type) {
  const NsaConfig cfg = config_of(c.geo);
  const std::string name = name_of(c, dtype) + (index_type == DType::i64 ? " slc(i64)" : " slc");
  Generator gen(seed);
  const Tensor q = rounded({c.batch, c.seq, c.heads_q, c.dim_k}, dtype, gen);
  const Tensor k = rounded({c.batch, c.seq, c.heads_kv, c.dim_k}, dtype, gen);
  const Tensor v = rounded({c.batch, c.seq, c.heads_kv, c.dim_v}, dtype, gen);
  const Tensor dout = rounded({c.batch, c.seq, c.heads_q, c.dim_v}, dtype, gen);
  const Tensor idx = random_indices(c, cfg, seed, index_type);
  const Grads ref = run_selected(q, k, v, idx, dout, cfg);
  auto run_gpu = [&] {
    return run_selected(on_gpu(q, dtype), on_gpu(k, dtype), on_gpu(v, dtype), to(idx, Device::cuda()),
                        on_gpu(dout, dtype), cfg);
  };
  // dQ from the Hopper dK/dV kernel's partials where it applies ("auto"), and from the query-side kernel.
  for (const bool query_side : {false, true}) {
#ifdef NSA_WITH_CUDA
    kernels::set_slc_dq_kernel(query_side ? kernels::SlcDqKernel::query_side
                                          : kernels::SlcDqKernel::automatic);
#endif
    const std::string run = name + (query_side ? " dq:query" : " dq:auto");
    const Grads gpu = run_gpu();
    expect_close(run, "out", gpu.out, ref.out, dtype);
    expect_close(run, "dq", gpu.grads[0], ref.grads[0], dtype);
    expect_close(run, "dk", gpu.grads[1], ref.grads[1], dtype);
    expect_close(run, "dv", gpu.grads[2], ref.grads[2], dtype);
    const Grads again = run_gpu();
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(equal_values(gpu.grads[i], again.grads[i])) << run << " grad " << i;
  }
#ifdef NSA_WITH_CUDA
  kernels::set_slc_dq_kernel(kernels::SlcDqKernel::automatic);
#endif
  check_device_errors(Device::cuda());
}

// The selection the CPU makes, used as fixed indices in the selected branch at the paper geometry (the
// realistic pattern: every token holds block 0 and its local blocks).
void check_selected_with_selection(const Case& c, DType dtype, uint64_t seed) {
  const NsaConfig cfg = config_of(c.geo);
  const std::string name = name_of(c, dtype) + " slc(selected)";
  Generator gen(seed);
  const int64_t nc = nsa_num_cmp_blocks(c.seq, cfg);
  const Tensor q = rounded({c.batch, c.seq, c.heads_q, c.dim_k}, dtype, gen);
  const Tensor kc = rounded({c.batch, nc, c.heads_kv, c.dim_k}, dtype, gen);
  const Tensor k = rounded({c.batch, c.seq, c.heads_kv, c.dim_k}, dtype, gen);
  const Tensor v = rounded({c.batch, c.seq, c.heads_kv, c.dim_v}, dtype, gen);
  const Tensor dout = rounded({c.batch, c.seq, c.heads_q, c.dim_v}, dtype, gen);
  const Tensor qg = on_gpu(q, dtype), kcg = on_gpu(kc, dtype);
  const Tensor idx_gpu = nsa_select_blocks(qg, kcg, nsa_compressed_attention(qg, kcg, kcg, cfg).lse, cfg);
  const Tensor idx = to(idx_gpu, Device::cpu());
  const Grads ref = run_selected(q, k, v, idx, dout, cfg);
  const Grads gpu = run_selected(qg, on_gpu(k, dtype), on_gpu(v, dtype), idx_gpu, on_gpu(dout, dtype), cfg);
  expect_close(name, "out", gpu.out, ref.out, dtype);
  expect_close(name, "dq", gpu.grads[0], ref.grads[0], dtype);
  expect_close(name, "dk", gpu.grads[1], ref.grads[1], dtype);
  expect_close(name, "dv", gpu.grads[2], ref.grads[2], dtype);
}

// ---- the tests -----------------------------------------------------------------------------------------

class NsaCuda : public ::testing::TestWithParam<DType> {};

TEST_P(NsaCuda, CompressedAttention) {
  NSA_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const Case& c : cases()) check_compressed(c, GetParam(), seed++);
  for (const Case& c : group_cases()) check_compressed(c, GetParam(), seed++);
  for (const Case& c : wide_cases()) check_compressed(c, GetParam(), seed++);
}

TEST_P(NsaCuda, Selection) {
  NSA_REQUIRE_GPU();
  uint64_t seed = 200;
  for (const Case& c : cases()) check_selection(c, GetParam(), seed++);
  for (const Case& c : group_cases()) check_selection(c, GetParam(), seed++);
  for (const Case& c : wide_cases()) check_selection(c, GetParam(), seed++);
}

TEST_P(NsaCuda, SelectedAttention) {
  NSA_REQUIRE_GPU();
  uint64_t seed = 300;
  for (const Case& c : cases()) check_selected(c, GetParam(), seed++, DType::i32);
  check_selected({kSmall, 2, 130, 4, 2, 64, 64}, GetParam(), seed++, DType::i64);
  check_selected({kPaper, 1, 1500, 16, 1, 128, 128}, GetParam(), seed++, DType::i32);  // the benchmark's G
  check_selected({kPaper, 1, 1100, 16, 1, 128, 128}, GetParam(), seed++, DType::i64);
  check_selected({kLongBlocks, 1, 700, 8, 2, 128, 128}, GetParam(), seed++, DType::i32);
  check_selected({kLongBlocks, 2, 333, 4, 1, 64, 64}, GetParam(), seed++, DType::i32);
  for (const Case& c : wide_cases()) check_selected(c, GetParam(), seed++, DType::i32);
}

TEST_P(NsaCuda, SelectedAttentionOnItsOwnSelection) {
  NSA_REQUIRE_GPU();
  check_selected_with_selection({kPaper, 1, 2000, 4, 1, 128, 128}, GetParam(), 400);
  check_selected_with_selection({kSmall, 1, 1000, 16, 1, 64, 64}, GetParam(), 401);
}

// The whole layer (eq. 5: compression, both sparse branches, the window, the gates) with its gradients.
TEST_P(NsaCuda, WholeLayer) {
  NSA_REQUIRE_GPU();
  const DType dtype = GetParam();
  const Case c{kSmall, 2, 77, 4, 2, 64, 64};
  const NsaConfig cfg = config_of(c.geo);
  const std::string name = name_of(c, dtype) + " layer";
  Generator gen(500);
  const int64_t hidden = 32;
  std::vector<Tensor> inputs = {
      rounded({c.batch, c.seq, c.heads_q, c.dim_k}, dtype, gen),   // q
      rounded({c.batch, c.seq, c.heads_kv, c.dim_k}, dtype, gen),  // k_cmp
      rounded({c.batch, c.seq, c.heads_kv, c.dim_v}, dtype, gen),  // v_cmp
      rounded({c.batch, c.seq, c.heads_kv, c.dim_k}, dtype, gen),  // k_slc
      rounded({c.batch, c.seq, c.heads_kv, c.dim_v}, dtype, gen),  // v_slc
      rounded({c.batch, c.seq, c.heads_kv, c.dim_k}, dtype, gen),  // k_win
      rounded({c.batch, c.seq, c.heads_kv, c.dim_v}, dtype, gen),  // v_win
      rounded({c.batch, c.seq, c.heads_q, 3}, dtype, gen),         // gate logits
      rounded({cfg.cmp_block, c.dim_k}, dtype, gen),               // φ_k
      rounded({hidden, cfg.cmp_block * c.dim_k}, dtype, gen),
      rounded({c.dim_k, hidden}, dtype, gen),
      rounded({cfg.cmp_block, c.dim_v}, dtype, gen),  // φ_v
      rounded({hidden, cfg.cmp_block * c.dim_v}, dtype, gen),
      rounded({c.dim_v, hidden}, dtype, gen),
  };
  // φ's first layer sees l·D inputs: scale it so that kc has the magnitude of k.
  for (int i : {9, 12})
    inputs[i] = to(to(mul_scalar(inputs[i], 1.0 / std::sqrt(64.0 * 8)), dtype), DType::f64);
  for (int i : {10, 13}) inputs[i] = to(to(mul_scalar(inputs[i], 1.0 / std::sqrt(32.0)), dtype), DType::f64);
  const Tensor dout = rounded({c.batch, c.seq, c.heads_q, c.dim_v}, dtype, gen);
  // The CPU's selection, held fixed on both devices (a bf16 near-tie could otherwise differ).
  Tensor fixed;
  auto run = [&](bool gpu) {
    std::vector<Tensor> x;
    for (const Tensor& t : inputs) x.push_back(leaf(gpu ? on_gpu(t, dtype) : t));
    NsaBranchInputs in{x[0], x[1], x[2],  x[3],  x[4],  x[5],  x[6], x[7],
                       x[8], x[9], x[10], x[11], x[12], x[13], {}};
    if (gpu) in.slc_indices = to(fixed, Device::cuda());
    if (!gpu) {
      const Tensor kc = nsa_compress(x[1], x[8], x[9], x[10], cfg);
      fixed = nsa_select_blocks(x[0], kc, nsa_compressed_attention(x[0], kc, kc, cfg).lse, cfg);
      in.slc_indices = fixed;
    }
    Tensor out = nsa_attention(in, cfg);
    backward(out, gpu ? on_gpu(dout, dtype) : dout);
    std::vector<Tensor> res{out};
    for (const Tensor& t : x) res.push_back(t.grad());
    return res;
  };
  const std::vector<Tensor> ref = run(false), got = run(true);
  const char* what[] = {"out",   "dq",     "dk_cmp", "dv_cmp", "dk_slc", "dv_slc", "dk_win", "dv_win",
                        "dgate", "dpos_k", "dw1_k",  "dw2_k",  "dpos_v", "dw1_v",  "dw2_v"};
  // In bf16 the gradients of φ pass through six rounded ops (gather, add, two linears, silu, attention):
  // the CPU's own bf16 run is 1.5e-2 away from f64 there, so the layer's bf16 bound is 4e-2.
  for (size_t i = 0; i < ref.size(); ++i)
    expect_close(name, what[i], got[i], ref[i], dtype, dtype == DType::bf16 ? 4e-2 : 1e-5);
}

// ---- the fused gate (nsa_gate_combine) --------------------------------------------------------------------

// x on the GPU at an address 1 element past a 16-byte boundary: the kernels' scalar fallback.
Tensor misaligned_on_gpu(const Tensor& x, DType dtype) {
  const Tensor flat = Tensor::empty({x.numel() + 1}, dtype, Device::cuda());
  const Tensor view = reshape(narrow(flat, 0, 1, x.numel()), x.shape());
  copy_(view, on_gpu(x, dtype));
  return view;
}

// out and the gradients of the four inputs against the CPU reference (f64 on the same rounded values); the
// GPU backward runs twice and must repeat its bits.
void check_gate(const Dims& shape, DType dtype, uint64_t seed, bool misaligned, double tol) {
  char name[128];
  std::snprintf(name, sizeof(name), "%s gate [%ld, %ld, %ld, %ld]%s", dtype_name(dtype),
                static_cast<long>(shape[0]), static_cast<long>(shape[1]), static_cast<long>(shape[2]),
                static_cast<long>(shape[3]), misaligned ? " misaligned" : "");
  Generator gen(seed);
  // Logits with std 2 (doubling is exact): gates from ~0.02 to ~0.98.
  std::vector<Tensor> host = {mul_scalar(rounded({shape[0], shape[1], shape[2], 3}, dtype, gen), 2.0),
                              rounded(shape, dtype, gen), rounded(shape, dtype, gen),
                              rounded(shape, dtype, gen)};
  const Tensor dout = rounded(shape, dtype, gen);
  auto run = [](const std::vector<Tensor>& in, const Tensor& grad_out) {
    std::vector<Tensor> x;
    for (const Tensor& t : in) x.push_back(leaf(t));
    std::vector<Tensor> res{nsa_gate_combine(x[0], x[1], x[2], x[3])};
    backward(res[0], grad_out);
    for (const Tensor& t : x) res.push_back(t.grad());
    return res;
  };
  std::vector<Tensor> dev;
  for (size_t i = 0; i < host.size(); ++i)
    dev.push_back(misaligned && i == 2 ? misaligned_on_gpu(host[i], dtype) : on_gpu(host[i], dtype));
  const std::vector<Tensor> ref = run(host, dout), got = run(dev, on_gpu(dout, dtype)),
                            again = run(dev, on_gpu(dout, dtype));
  const char* what[] = {"out", "d_logits", "d_cmp", "d_slc", "d_win"};
  for (size_t i = 0; i < ref.size(); ++i) {
    expect_close(name, what[i], got[i], ref[i], dtype, tol);
    EXPECT_TRUE(equal_values(got[i], again[i])) << name << " " << what[i] << " differs between two runs";
  }
}

// Shapes: a single element; Dv = 64, 128 (16-byte packs, 8 and 16 lanes per bf16 row); Dv = 5 (scalar
// path); Dv = 200, 520 (rows longer than 32 lanes' packs); T·H not a multiple of the rows per block.
const Dims kGateShapes[] = {{1, 1, 1, 1},      {2, 77, 3, 64},  {1, 130, 4, 128}, {1, 33, 16, 5},
                            {1, 1000, 8, 128}, {1, 17, 2, 200}, {1, 9, 3, 520}};

TEST_P(NsaCuda, GateCombine) {
  NSA_REQUIRE_GPU();
  uint64_t seed = 600;
  for (const Dims& shape : kGateShapes) check_gate(shape, GetParam(), seed++, false, tolerance(GetParam()));
  check_gate({2, 77, 3, 64}, GetParam(), seed++, true, tolerance(GetParam()));
}

TEST(NsaCudaF64, GateCombine) {
  NSA_REQUIRE_GPU();
  uint64_t seed = 700;
  for (const Dims& shape : kGateShapes) check_gate(shape, DType::f64, seed++, false, 1e-12);
  check_gate({1, 130, 4, 128}, DType::f64, seed++, true, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NsaCuda, ::testing::Values(DType::bf16, DType::f32),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace nsa::test
