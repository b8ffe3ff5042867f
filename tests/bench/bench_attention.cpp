// Dense attention benchmark (nsa::attention, bf16 → the flash kernels): forward and forward + backward at the
// benchmark model's shape, B = 1, Hq = 64, Hkv = 4, D = 128, T = 8k .. 64k, full causal and window 512, under
// both kernel choices (flash_attention.h): "auto" (the Hopper group-row wgmma kernels where they apply) and
// "mma.sync" (the FlashAttention-2 style kernels).
// FLOPs counted as causal work only: forward 4·T·avg_keys·Hq·D (two products), backward 2.5× that (five
// products; the deterministic dQ kernel's two recomputed ones are not counted). Each timing is the median
// of several runs (CUDA events) after one warm-up; inputs are random. The reference column is PyTorch SDPA
// (flash backend) on an H100 at the same shape, full causal (numbers given with the task, not re-measured).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/cuda_api.h"
#include "kernels/attention/flash_attention.h"
#include "kernels/nsa/nsa.h"
#include "ops/ops.h"
#include "tests/bench/bench_timer.h"

using namespace nsa;

namespace {

// Median milliseconds of `fn` over `reps` timed runs, after one warm-up run.
double time_ms(const std::function<void()>& fn, int reps) { return bench::median_ms(fn, reps); }

// Mean number of keys a query sees: min(t + 1, window) averaged over t.
double avg_keys(int64_t seq, int64_t window) {
  if (window <= 0 || window >= seq) return (seq + 1) / 2.0;
  const double w = static_cast<double>(window);
  return (w * (w + 1) / 2 + static_cast<double>(seq - window) * w) / static_cast<double>(seq);
}

struct Reference {
  int64_t seq;
  double fwd_ms, fwd_bwd_ms;
};
// PyTorch SDPA flash, causal, H100, B = 1, Hq = 64, Hkv = 4, D = 128 (given with the task).
const Reference kSdpa[] = {{8192, 3.2, 13.1}, {65536, 206.0, 754.0}};

}  // namespace

// Usage: nsa_bench_attention [T ...] (default 8192 16384 32768 65536).
int main(int argc, char** argv) {
  if (!cuda::available()) {
    std::fprintf(stderr, "nsa_bench_attention: no CUDA device\n");
    return 1;
  }
  const Device gpu = Device::cuda();
  std::printf("device: %s\n", cuda::device_name(0).c_str());
  const int64_t heads_q = 64, heads_kv = 4, dim = 128;

  std::printf(
      "\n| T | window | kernels | fwd ms | fwd TFLOP/s | fwd+bwd ms | fwd+bwd TFLOP/s | bwd ms | SDPA fwd / "
      "fwd+bwd ms | ours vs SDPA |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> notes;  // forward under the other warpgroup sharings, printed after the table
  std::vector<int64_t> seqs;
  for (int i = 1; i < argc; ++i) seqs.push_back(std::atoll(argv[i]));
  if (seqs.empty()) seqs = {8192, 16384, 32768, 65536};
  for (const int64_t seq : seqs) {
    Generator gen(7);
    const Tensor q = randn({1, seq, heads_q, dim}, DType::bf16, gpu, &gen);
    const Tensor k = randn({1, seq, heads_kv, dim}, DType::bf16, gpu, &gen);
    const Tensor v = randn({1, seq, heads_kv, dim}, DType::bf16, gpu, &gen);
    const Tensor dout = randn({1, seq, heads_q, dim}, DType::bf16, gpu, &gen);
    Tensor qg = detach(q).set_requires_grad(true), kg = detach(k).set_requires_grad(true),
           vg = detach(v).set_requires_grad(true);
    const int reps = seq >= 32768 ? 3 : 10;
    for (const int64_t window : {int64_t{0}, int64_t{512}})
      for (const kernels::FlashKernel choice :
           {kernels::FlashKernel::automatic, kernels::FlashKernel::mma_sync}) {
        kernels::set_flash_kernel(choice);
        const char* choice_name = choice == kernels::FlashKernel::automatic ? "auto" : "mma.sync";
        const double flops_fwd = 4.0 * static_cast<double>(seq) * avg_keys(seq, window) * heads_q * dim;
        const double fwd = time_ms(
            [&] {
              NoGradGuard no_grad;
              Tensor o = attention(q, k, v, 0.0, window);
            },
            reps);
        double grad_sum = 0;
        const double fwd_bwd = time_ms(
            [&] {
              qg.set_grad(Tensor());
              kg.set_grad(Tensor());
              vg.set_grad(Tensor());
              Tensor o = attention(qg, kg, vg, 0.0, window);
              backward(o, dout);
            },
            reps);
        grad_sum = item(sum(to(qg.grad(), DType::f32))) + item(sum(to(kg.grad(), DType::f32)));
        if (choice == kernels::FlashKernel::automatic) {
          // The Hopper forward's other ways of sharing K/V stages among its warpgroups, same inputs.
          double other[2];
          const kernels::GroupForwardSync syncs[2] = {kernels::GroupForwardSync::ring3,
                                                      kernels::GroupForwardSync::lockstep};
          for (int i = 0; i < 2; ++i) {
            kernels::set_group_forward_sync(syncs[i]);
            other[i] = time_ms(
                [&] {
                  NoGradGuard no_grad;
                  Tensor o = attention(q, k, v, 0.0, window);
                },
                reps);
          }
          kernels::set_group_forward_sync(kernels::GroupForwardSync::automatic);
          char buf[256];
          std::snprintf(
              buf, sizeof(buf),
              "T = %lldk, %s: forward %.2f ms with the 4-stage ring (default), %.2f ms with 3 stages, "
              "%.2f ms in lockstep",
              static_cast<long long>(seq / 1024), window == 0 ? "causal" : std::to_string(window).c_str(),
              fwd, other[0], other[1]);
          notes.push_back(buf);
        }
        if (!std::isfinite(grad_sum)) {
          std::fprintf(stderr, "non-finite gradients at T = %lld, window %lld\n", static_cast<long long>(seq),
                       static_cast<long long>(window));
          return 1;
        }
        std::string ref = "-", ratio = "-";
        for (const Reference& r : kSdpa)
          if (r.seq == seq && window == 0) {
            char buf[64];
            std::snprintf(buf, sizeof(buf), "%.1f / %.1f", r.fwd_ms, r.fwd_bwd_ms);
            ref = buf;
            std::snprintf(buf, sizeof(buf), "%.0f%% / %.0f%%", 100.0 * r.fwd_ms / fwd,
                          100.0 * r.fwd_bwd_ms / fwd_bwd);
            ratio = buf;
          }
        std::printf("| %lldk | %s | %s | %.2f | %.0f | %.2f | %.0f | %.2f | %s | %s |\n",
                    static_cast<long long>(seq / 1024),
                    window == 0 ? "causal" : std::to_string(window).c_str(), choice_name, fwd,
                    flops_fwd / fwd / 1e9, fwd_bwd, 3.5 * flops_fwd / fwd_bwd / 1e9, fwd_bwd - fwd,
                    ref.c_str(), ratio.c_str());
        std::fflush(stdout);
      }
  }
  kernels::set_flash_kernel(kernels::FlashKernel::automatic);
  std::printf("\n");
  for (const std::string& n : notes) std::printf("%s\n", n.c_str());
  const MemoryStats s = memory_stats(gpu);
  std::printf("\nallocator: peak %.2f GiB reserved\n",
              static_cast<double>(s.peak_reserved_bytes) / (1 << 30));
  return 0;
}
