// CPU GEMM benchmark: GFLOP/s of the packed f32 kernels (each one this CPU runs) with 1 and 2 threads, and
// of the f64-accumulating reference loop, on the GEMMs of a CPU training step (2048 tokens, d_model 128,
// ffn 384, vocab 512): each linear's forward (NN), input gradient (NT) and weight gradient (TN).
// Each figure: the median of 7 timed runs of ≥ 30 ms each after a warm-up. Not a test (no ctest).
//   usage: nsa_bench_cpu_gemm [--no-reference]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/gemm_packed.h"
#include "ops/cpu/parallel.h"
#include "ops/ops.h"

using namespace nsa;

namespace {

struct Case {
  const char* what;
  int64_t m, n, k;
  bool trans_a, trans_b;
};

Tensor random_matrix(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (float& x : v) x = normal(rng);
  return from_vector(v, {rows, cols});
}

GemmArgs make_args(const Case& c, std::mt19937& rng) {
  GemmArgs g;
  g.m = c.m;
  g.n = c.n;
  g.k = c.k;
  g.trans_a = c.trans_a;
  g.trans_b = c.trans_b;
  g.a = c.trans_a ? random_matrix(c.k, c.m, rng) : random_matrix(c.m, c.k, rng);
  g.b = c.trans_b ? random_matrix(c.n, c.k, rng) : random_matrix(c.k, c.n, rng);
  g.out = Tensor::empty({c.m, c.n}, DType::f32);
  g.lda = c.trans_a ? c.m : c.k;
  g.ldb = c.trans_b ? c.k : c.n;
  g.ldc = c.n;
  return g;
}

// GFLOP/s of fn for a GEMM of `flops`.
double gflops(const std::function<void()>& fn, double flops, int reps = 7) {
  using clock = std::chrono::steady_clock;
  fn();
  auto t0 = clock::now();
  fn();
  const double once = std::chrono::duration<double>(clock::now() - t0).count();
  const int inner = std::max(1, static_cast<int>(0.03 / std::max(once, 1e-9)));
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    t0 = clock::now();
    for (int i = 0; i < inner; ++i) fn();
    const double s = std::chrono::duration<double>(clock::now() - t0).count() / inner;
    rates.push_back(flops / s * 1e-9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const bool reference = !(argc > 1 && std::strcmp(argv[1], "--no-reference") == 0);
  const std::vector<Case> cases = {
      {"ffn up fwd    [2048,128]x[128,384]", 2048, 384, 128, false, false},
      {"ffn up dX     [2048,384]x[384,128]^T", 2048, 128, 384, false, true},
      {"ffn up dW     [128,2048]^Tx[2048,384]", 128, 384, 2048, true, false},
      {"ffn down fwd  [2048,384]x[384,128]", 2048, 128, 384, false, false},
      {"ffn down dX   [2048,128]x[128,384]^T", 2048, 384, 128, false, true},
      {"ffn down dW   [384,2048]^Tx[2048,128]", 384, 128, 2048, true, false},
      {"lm head fwd   [2048,128]x[128,512]", 2048, 512, 128, false, false},
      {"lm head dX    [2048,512]x[512,128]^T", 2048, 128, 512, false, true},
      {"lm head dW    [128,2048]^Tx[2048,512]", 128, 512, 2048, true, false},
      {"attn proj fwd [2048,128]x[128,128]", 2048, 128, 128, false, false},
  };
  std::vector<cpu::GemmKernel> kernels;
  for (auto k : {cpu::GemmKernel::portable, cpu::GemmKernel::avx2, cpu::GemmKernel::avx512}) {
    if (cpu::gemm_kernel_supported(k)) kernels.push_back(k);
  }
  const int max_threads = cpu::num_threads();
  std::printf("CPU GEMM, f32, GFLOP/s (median); default kernel: %s; threads available: %d\n\n",
              cpu::gemm_kernel_name(cpu::best_gemm_kernel()), max_threads);
  std::printf("| shape (m x n x k) |");
  if (reference) std::printf(" reference 1t |");
  for (auto k : kernels) std::printf(" %s 1t | %s 2t |", cpu::gemm_kernel_name(k), cpu::gemm_kernel_name(k));
  std::printf("\n|---|");
  if (reference) std::printf("---|");
  for (size_t i = 0; i < kernels.size(); ++i) std::printf("---|---|");
  std::printf("\n");
  std::mt19937 rng(1);
  std::vector<double> total_time(kernels.size() * 2, 0.0);
  double total_flops = 0;
  for (const Case& c : cases) {
    GemmArgs g = make_args(c, rng);
    const double flops = 2.0 * c.m * c.n * c.k;
    total_flops += flops;
    std::printf("| %s |", c.what);
    std::fflush(stdout);
    if (reference) {
      cpu::set_num_threads(1);
      std::printf(" %.2f |", gflops([&] { cpu::gemm_reference(g); }, flops, 3));
    }
    for (size_t ki = 0; ki < kernels.size(); ++ki) {
      for (int t = 1; t <= 2; ++t) {
        cpu::set_num_threads(std::min(t, max_threads));
        const double rate = gflops([&] { cpu::gemm_packed(g, kernels[ki]); }, flops);
        total_time[ki * 2 + static_cast<size_t>(t - 1)] += flops / (rate * 1e9);
        std::printf(" %.1f |", rate);
      }
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf("| **all shapes (total flops / total time)** |");
  if (reference) std::printf(" |");
  for (double t : total_time) std::printf(" **%.1f** |", total_flops / t * 1e-9);
  std::printf("\n");
  return 0;
}
