// L2 → SM read bandwidth probe: the ceiling the selected-attention kernels are measured against
// (docs/nsa.md). Reads a buffer that fits in L2 over and over with 16-byte loads, in three access patterns:
//   stream   each CTA walks a contiguous slice (the best case);
//   rows     256-byte rows 1 KB apart, 64 rows per block (a KV head's block of keys in [T, Hkv, D] bf16);
//   gather   like rows, but each CTA reads 16 blocks picked at random per step (the selected branch's
//   pattern);
// and the same stream read from a buffer far larger than L2 (HBM). Prints TB/s and, for the L2 patterns, the
// bytes moved per SM per clock.
//   nsa_bench_l2 [L2 buffer MiB = 16]
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "bench_timer.h"

namespace {

// Sums what it reads so the loads are not removed; the sum lands in sink[block] (never read).
__device__ __forceinline__ void consume(uint4 v, uint32_t& acc) { acc ^= v.x ^ v.y ^ v.z ^ v.w; }

__global__ void stream_kernel(const uint4* __restrict__ buf, size_t n16, int passes, uint32_t* sink) {
  uint32_t acc = 0;
  const size_t per_cta = n16 / gridDim.x, base = per_cta * blockIdx.x;
  for (int p = 0; p < passes; ++p)
    for (size_t i = threadIdx.x; i < per_cta; i += blockDim.x * 4) {
      uint4 v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const size_t j = i + static_cast<size_t>(u) * blockDim.x;
        v[u] = j < per_cta ? __ldcg(buf + base + j) : uint4{};
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) consume(v[u], acc);
    }
  if (acc == 0x12345678u) sink[blockIdx.x] = acc;
}

// Blocks of 64 rows × 256 bytes, rows 1 KB apart (head 0 of 4 in a [T, 4, 128] bf16 tensor). Each step a CTA
// reads `per_step` blocks: consecutive ones (gather = false) or random ones (true).
__global__ void block_kernel(const uint4* __restrict__ buf, int n_blocks, int steps, int per_step,
                             bool gather, uint32_t* sink) {
  uint32_t acc = 0, rng = 2654435761u * (blockIdx.x + 1);
  constexpr int kRowStride16 = 1024 / 16, kRow16 = 256 / 16, kRows = 64;
  for (int s = 0; s < steps; ++s)
    for (int b = 0; b < per_step; ++b) {
      int blk;
      if (gather) {
        rng = rng * 1664525u + 1013904223u;
        blk = static_cast<int>(rng >> 8) % n_blocks;
      } else {
        blk = (blockIdx.x * per_step + b + s) % n_blocks;
      }
      const uint4* p = buf + static_cast<size_t>(blk) * kRows * kRowStride16;
      // 64 rows × 16 chunks = 1024 chunks; 128 threads take 8 each.
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int c = threadIdx.x + u * blockDim.x, r = c / kRow16, col = c % kRow16;
        v[u] = __ldcg(p + r * kRowStride16 + col);
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) consume(v[u], acc);
    }
  if (acc == 0x12345678u) sink[blockIdx.x] = acc;
}

cudaStream_t stream() { return static_cast<cudaStream_t>(nsa::cuda::current_stream()); }

// Median of 3 timed launches on the framework's current stream (after one warm-up).
template <class F>
float time_ms(F&& launch) {
  return static_cast<float>(nsa::bench::median_ms(launch, 3));
}

}  // namespace

int main(int argc, char** argv) {
  int dev_count = 0;
  if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
    std::fprintf(stderr, "nsa_bench_l2: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  int clock_khz = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  const size_t l2_bytes = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 16) << 20;
  const size_t hbm_bytes = size_t{2} << 30;
  std::printf("device: %s, %d SMs, L2 %d MiB, clock %.0f MHz\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, clock_khz / 1e3);
  uint4* buf = nullptr;
  uint32_t* sink = nullptr;
  CHECK_CUDA(cudaMalloc(&buf, hbm_bytes));
  CHECK_CUDA(cudaMemset(buf, 1, hbm_bytes));
  CHECK_CUDA(cudaMalloc(&sink, 1 << 20));
  const int sms = prop.multiProcessorCount;
  auto report = [&](const char* name, double bytes, float ms, bool l2) {
    const double tbs = bytes / (ms * 1e-3) / 1e12;
    if (l2) {
      const double per_sm_clk = bytes / (ms * 1e-3) / sms / (clock_khz * 1e3);
      std::printf("%-34s %8.2f TB/s  (%.1f B per SM per clock at the rated clock)\n", name, tbs, per_sm_clk);
    } else {
      std::printf("%-34s %8.2f TB/s\n", name, tbs);
    }
  };
  for (int ctas_per_sm : {4, 8, 16}) {
    const int grid = sms * ctas_per_sm, passes = 40;
    const size_t n16 = l2_bytes / 16;
    const float ms = time_ms([&] { stream_kernel<<<grid, 256, 0, stream()>>>(buf, n16, passes, sink); });
    char name[64];
    std::snprintf(name, sizeof(name), "L2 stream (%d CTAs/SM x 256)", ctas_per_sm);
    report(name, static_cast<double>(l2_bytes) * passes, ms, true);
  }
  {
    const int grid = sms * 8;
    const size_t n16 = hbm_bytes / 16;
    const float ms = time_ms([&] { stream_kernel<<<grid, 256, 0, stream()>>>(buf, n16, 1, sink); });
    report("HBM stream (2 GiB)", static_cast<double>(hbm_bytes), ms, false);
  }
  // Blocks: the buffer holds L2-resident [T, 4, 128] bf16 keys; 64-row blocks of head 0.
  const int n_blocks = static_cast<int>(l2_bytes / (64 * 1024));
  for (bool gather : {false, true})
    for (int ctas_per_sm : {8, 16}) {
      const int grid = sms * ctas_per_sm, steps = 64, per_step = 16;
      const float ms = time_ms(
          [&] { block_kernel<<<grid, 128, 0, stream()>>>(buf, n_blocks, steps, per_step, gather, sink); });
      char name[64];
      std::snprintf(name, sizeof(name), "L2 %s blocks (%d CTAs/SM x 128)", gather ? "random" : "consecutive",
                    ctas_per_sm);
      report(name, static_cast<double>(grid) * steps * per_step * 64 * 256, ms, true);
    }
  CHECK_CUDA(cudaFree(buf));
  CHECK_CUDA(cudaFree(sink));
  return 0;
}
