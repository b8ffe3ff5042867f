// The CPU backend's packed GEMM (ops/cpu/gemm_packed.h) against its reference loop (double accumulation,
// one rounding), for every kernel this CPU runs: ragged shapes, the four transpose combinations, padded
// leading dimensions, batches with a broadcast operand (stride 0), alpha/beta (beta = 0 must not read out).
//
// Tolerance, per element: the f32 sum of k products carries at most k roundings of u = 2⁻²⁴ relative to
// Σ|a·b|, and the epilogue (alpha·sum + beta·out) adds two more, so |fast − ref| ≤ (k + 2)·u·bound, with
// bound = |alpha|·|A|·|B| + |beta|·|C| computed by the reference itself (plus one final rounding of ref).
// Norm-wise relative errors are printed. Determinism: bits equal for 1, 2 and 3 threads, and for avx2 vs
// avx512 (both fuse each multiply-add in the same order).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "ops/cpu/gemm_packed.h"
#include "ops/cpu/parallel.h"
#include "ops/ops.h"
#include "test_util.h"

namespace nsa {
namespace {

using cpu::GemmKernel;

struct Shape {
  int64_t batch, m, n, k;
  bool trans_a, trans_b;
  int64_t pad = 0;  // added to every leading dimension
  bool broadcast_a = false, broadcast_b = false;
  double alpha = 1.0, beta = 0.0;
};

std::string describe(const Shape& s) {
  return str("batch=", s.batch, " m=", s.m, " n=", s.n, " k=", s.k, " ta=", s.trans_a, " tb=", s.trans_b,
             " pad=", s.pad, " bcast_a=", s.broadcast_a, " bcast_b=", s.broadcast_b, " alpha=", s.alpha,
             " beta=", s.beta);
}

Tensor random_f32(int64_t count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = normal(rng);
  return from_vector(v, {count});
}

Tensor abs_copy(const Tensor& t) {
  std::vector<float> v = to_vector<float>(t);
  for (float& x : v) x = std::fabs(x);
  return from_vector(v, {static_cast<int64_t>(v.size())});
}

// Operands stored as flat f32 buffers with the Shape's leading dimensions and batch strides.
struct Problem {
  GemmArgs args;
  Tensor c_init;  // out's initial contents (random when beta != 0, NaN otherwise: must not be read)
};

Problem make_problem(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p;
  GemmArgs& g = p.args;
  g.batch = s.batch;
  g.m = s.m;
  g.n = s.n;
  g.k = s.k;
  g.trans_a = s.trans_a;
  g.trans_b = s.trans_b;
  g.lda = (s.trans_a ? s.m : s.k) + s.pad;
  g.ldb = (s.trans_b ? s.k : s.n) + s.pad;
  g.ldc = s.n + s.pad;
  const int64_t a_entry = (s.trans_a ? s.k : s.m) * g.lda, b_entry = (s.trans_b ? s.n : s.k) * g.ldb;
  g.stride_a = s.broadcast_a ? 0 : a_entry;
  g.stride_b = s.broadcast_b ? 0 : b_entry;
  g.stride_c = s.m * g.ldc;
  g.alpha = s.alpha;
  g.beta = s.beta;
  g.a = random_f32(a_entry * (s.broadcast_a ? 1 : s.batch), rng);
  g.b = random_f32(b_entry * (s.broadcast_b ? 1 : s.batch), rng);
  p.c_init = s.beta != 0.0 ? random_f32(s.batch * g.stride_c, rng)
                           : full({s.batch * g.stride_c}, std::nan(""), DType::f32);
  return p;
}

// out for the problem computed by `fn` on a fresh copy of c_init.
template <class F>
Tensor run(const Problem& p, F&& fn) {
  GemmArgs g = p.args;
  g.out = clone(p.c_init);
  fn(g);
  return g.out;
}

std::vector<GemmKernel> supported_kernels() {
  std::vector<GemmKernel> out;
  for (GemmKernel k : {GemmKernel::portable, GemmKernel::avx2, GemmKernel::avx512}) {
    if (cpu::gemm_kernel_supported(k)) out.push_back(k);
  }
  return out;
}

// Checks every output element of `kernel` against the reference within the bound above; only the
// elements inside the m × n windows may change (padding columns keep their initial bits).
void check_against_reference(const Shape& s, GemmKernel kernel) {
  SCOPED_TRACE(str(describe(s), " kernel=", cpu::gemm_kernel_name(kernel)));
  const Problem p = make_problem(s, 1234u + static_cast<uint32_t>(s.m * 31 + s.n * 7 + s.k));
  const Tensor fast = run(p, [&](const GemmArgs& g) { cpu::gemm_packed(g, kernel); });
  const Tensor ref = run(p, [&](const GemmArgs& g) { cpu::gemm_reference(g); });
  Problem pb = p;  // the bound: |alpha|·|A|·|B| + |beta|·|C|
  pb.args.a = abs_copy(p.args.a);
  pb.args.b = abs_copy(p.args.b);
  pb.args.alpha = std::fabs(s.alpha);
  pb.args.beta = std::fabs(s.beta);
  if (s.beta != 0.0) pb.c_init = abs_copy(p.c_init);
  const Tensor bound = run(pb, [&](const GemmArgs& g) { cpu::gemm_reference(g); });

  const std::vector<float> f = to_vector<float>(fast), r = to_vector<float>(ref), b = to_vector<float>(bound),
                           init = to_vector<float>(p.c_init);
  const double u = std::ldexp(1.0, -24);
  double diff2 = 0, ref2 = 0, worst_ratio = 0;
  int64_t bad = 0;
  for (int64_t bt = 0; bt < s.batch; ++bt) {
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < p.args.ldc; ++j) {
        const size_t e = static_cast<size_t>(bt * p.args.stride_c + i * p.args.ldc + j);
        if (j >= s.n) {  // padding: untouched
          if (std::memcmp(&f[e], &init[e], sizeof(float)) != 0) ++bad;
          continue;
        }
        const double d = std::fabs(static_cast<double>(f[e]) - r[e]);
        const double tol = (s.k + 2) * u * b[e] + u * std::fabs(r[e]) + 1e-30;
        worst_ratio = std::max(worst_ratio, d / tol);
        if (!(d <= tol)) ++bad;  // also catches NaN
        diff2 += d * d;
        ref2 += static_cast<double>(r[e]) * r[e];
      }
    }
  }
  const double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  std::printf("  %-8s %s: rel error %.3g, worst error / bound %.3g\n", cpu::gemm_kernel_name(kernel),
              describe(s).c_str(), rel, worst_ratio);
  EXPECT_EQ(bad, 0) << "elements outside the error bound (or padding overwritten)";
  EXPECT_LT(rel, (s.k + 2) * u);
}

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> all = [] {
    std::vector<Shape> v;
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        v.push_back({1, 1, 1, 1, ta, tb});
        v.push_back({1, 7, 13, 5, ta, tb});
        v.push_back({1, 33, 65, 17, ta, tb, 3});
        v.push_back({1, 128, 384, 256, ta, tb});
        v.push_back({1, 37, 41, 1000, ta, tb, 1});  // k beyond one k block: partial sums in scratch
        v.push_back({3, 13, 29, 11, ta, tb, 2, true, false, 0.5, -1.5});
        v.push_back({3, 19, 17, 23, ta, tb, 0, false, true, -2.0, 0.25});
        v.push_back({2, 25, 50, 300, ta, tb, 0, false, false, 1.0, 1.0});
      }
    }
    // Row-major B with rows >= 4 KiB apart and many rows of A: packed rather than read in place.
    v.push_back({1, 600, 40, 30, false, false, 1000});
    v.push_back({2, 300, 20, 30, true, false, 1100, false, true, 1.0, 0.5});
    v.push_back({1, 2048, 128, 384, false, false});  // training shapes: forward, dX, dW
    v.push_back({1, 2048, 128, 384, false, true});
    v.push_back({1, 128, 384, 2048, true, false});
    return v;
  }();
  return all;
}

TEST(CpuGemm, MatchesReferenceEveryKernel) {
  for (GemmKernel kernel : supported_kernels()) {
    for (const Shape& s : shapes()) check_against_reference(s, kernel);
  }
}

TEST(CpuGemm, Bf16MatchesReference) {
  // bf16 inputs are exact in f32; the output's final rounding (2⁻⁹ relative) dominates.
  for (const Shape& s :
       {Shape{1, 33, 65, 17, false, true, 2}, Shape{2, 40, 24, 300, true, false, 0, false, true, 0.5, 2.0}}) {
    SCOPED_TRACE(describe(s));
    Problem p = make_problem(s, 99u);
    p.args.a = to(p.args.a, DType::bf16);
    p.args.b = to(p.args.b, DType::bf16);
    p.c_init = to(s.beta != 0.0 ? p.c_init : full({p.c_init.numel()}, 0.0), DType::bf16);
    const Tensor fast = run(p, [&](const GemmArgs& g) { cpu::gemm_packed(g, cpu::best_gemm_kernel()); });
    const Tensor ref = run(p, [&](const GemmArgs& g) { cpu::gemm_reference(g); });
    const double rel = test::rel_error(fast, ref);
    std::printf("  bf16 %s: rel error %.3g\n", describe(s).c_str(), rel);
    EXPECT_LT(rel, 4e-3);
    EXPECT_GT(test::rel_error(fast, full({fast.numel()}, 0.0, DType::bf16)), 0.5);  // not all zero
  }
}

TEST(CpuGemm, BitIdenticalAcrossThreadCounts) {
  const int saved = cpu::num_threads();
  for (const Shape& s : {Shape{1, 2048, 128, 384, false, true}, Shape{1, 128, 384, 2048, true, false},
                         Shape{4, 100, 70, 90, false, false, 1, false, true, 0.5, 0.5}}) {
    const Problem p = make_problem(s, 7u);
    std::vector<Tensor> outs;
    for (int threads : {1, 2, 3}) {
      cpu::set_num_threads(threads);
      outs.push_back(run(p, [&](const GemmArgs& g) { cpu::gemm_packed(g, cpu::best_gemm_kernel()); }));
    }
    for (size_t t = 1; t < outs.size(); ++t) {
      EXPECT_EQ(std::memcmp(outs[0].data_ptr(), outs[t].data_ptr(), outs[0].nbytes()), 0)
          << describe(s) << ": " << t + 1 << " threads differ from 1";
    }
  }
  cpu::set_num_threads(saved);
}

TEST(CpuGemm, Avx2AndAvx512GiveTheSameBits) {
  if (!cpu::gemm_kernel_supported(GemmKernel::avx2) || !cpu::gemm_kernel_supported(GemmKernel::avx512)) {
    GTEST_SKIP() << "this CPU lacks avx2 or avx512";
  }
  for (const Shape& s : shapes()) {
    const Problem p = make_problem(s, 11u);
    const Tensor a = run(p, [&](const GemmArgs& g) { cpu::gemm_packed(g, GemmKernel::avx2); });
    const Tensor b = run(p, [&](const GemmArgs& g) { cpu::gemm_packed(g, GemmKernel::avx512); });
    EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0) << describe(s);
  }
}

// The backend entry point: f32 matmul takes the packed path and agrees with f64.
TEST(CpuGemm, MatmulF32AgreesWithF64) {
  std::mt19937 rng(5);
  const Tensor x = reshape(random_f32(96 * 200, rng), {96, 200});
  const Tensor w = reshape(random_f32(200 * 72, rng), {200, 72});
  const Tensor y = matmul(x, w);
  const Tensor y64 = matmul(to(x, DType::f64), to(w, DType::f64));
  const double rel = test::rel_error(to(y, DType::f64), y64);
  std::printf("  matmul f32 vs f64: rel error %.3g\n", rel);
  EXPECT_LT(rel, 202 * std::ldexp(1.0, -24));
  EXPECT_GT(rel, 0.0);  // f32 accumulation: not the f64 result exactly
}

}  // namespace
}  // namespace nsa
