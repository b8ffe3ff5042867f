// Core micro-benchmark: the tensor API against the hardware's own ceilings, in one run.
//  - bf16 matmul through nsa::matmul vs a raw cublasGemmEx call (same shapes, same precision).
//  - large elementwise ops and RMSNorm vs a device-to-device copy's bandwidth (bytes read + written).
// Each timing is the median of 20 repetitions (CUDA events) after warm-up; inputs are random and far larger
// than L2. Prints a markdown table (docs/benchmarks.md holds the recorded one).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/cuda_api.h"
#include "ops/ops.h"
#include "tests/bench/bench_timer.h"

using namespace nsa;

namespace {

// Median milliseconds of `fn` over `reps` timed runs of `inner` calls each, after 3 warm-up calls.
double time_ms(const std::function<void()>& fn, int reps = 20, int inner = 5) {
  return bench::median_ms(fn, reps, inner, 3);
}

struct Row {
  std::string what, ours, reference, ratio, note;
};
std::vector<Row> rows;

void bench_matmul(cublasHandle_t handle, int64_t n) {
  const Device gpu = Device::cuda();
  Tensor a = randn({n, n}, DType::bf16, gpu), b = randn({n, n}, DType::bf16, gpu);
  Tensor c = empty({n, n}, DType::bf16, gpu);
  const float alpha = 1.0f, beta = 0.0f;
  // Raw cuBLAS: row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ.
  auto raw = [&] {
    if (cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(n),
                     static_cast<int>(n), &alpha, b.data_ptr(), CUDA_R_16BF, static_cast<int>(n),
                     a.data_ptr(), CUDA_R_16BF, static_cast<int>(n), &beta, c.data_ptr(), CUDA_R_16BF,
                     static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "cublasGemmEx failed\n");
      std::exit(1);
    }
  };
  auto ours = [&] { Tensor out = matmul(a, b); };
  // Interleaved rounds, median of each: clock drift between two long runs would bias one side.
  std::vector<double> raw_ms, ours_ms;
  for (int round = 0; round < 5; ++round) {
    raw_ms.push_back(time_ms(raw, 10));
    ours_ms.push_back(time_ms(ours, 10));
  }
  std::sort(raw_ms.begin(), raw_ms.end());
  std::sort(ours_ms.begin(), ours_ms.end());
  const double t_raw = raw_ms[2], t_ours = ours_ms[2];
  const double flops = 2.0 * n * n * n;
  char buf[4][64];
  std::snprintf(buf[0], 64, "%.3f ms (%.0f TFLOP/s)", t_ours, flops / t_ours / 1e9);
  std::snprintf(buf[1], 64, "%.3f ms (%.0f TFLOP/s)", t_raw, flops / t_raw / 1e9);
  std::snprintf(buf[2], 64, "%.1f%%", 100.0 * t_raw / t_ours);
  rows.push_back({"matmul bf16 " + std::to_string(n) + "³", buf[0], "cublasGemmEx " + std::string(buf[1]),
                  buf[2], "target ≥ 90%"});
}

void bench_bandwidth(double copy_gbs, const std::string& what, double bytes,
                     const std::function<void()>& fn) {
  const double t = time_ms(fn);
  const double gbs = bytes / t / 1e6;
  char ours[64], ratio[32];
  std::snprintf(ours, 64, "%.3f ms (%.0f GB/s)", t, gbs);
  std::snprintf(ratio, 32, "%.1f%%", 100.0 * gbs / copy_gbs);
  char ref[64];
  std::snprintf(ref, 64, "D2D copy %.0f GB/s", copy_gbs);
  rows.push_back({what, ours, ref, ratio, "target ≥ 70%"});
}

}  // namespace

int main() {
  if (!cuda::available()) {
    std::fprintf(stderr, "nsa_bench_core: no CUDA device\n");
    return 1;
  }
  const Device gpu = Device::cuda();
  std::printf("device: %s\n", cuda::device_name(0).c_str());
  cublasHandle_t handle;
  cublasCreate(&handle);
  cublasSetStream(handle, static_cast<cudaStream_t>(cuda::current_stream()));

  bench_matmul(handle, 4096);
  bench_matmul(handle, 8192);

  // Copy ceiling: 1 GiB device-to-device, counting bytes read + written.
  const int64_t n = int64_t{1} << 28;  // 256 Mi elements (512 MiB in bf16)
  Tensor src = randn({n}, DType::f32, gpu), dst = empty({n}, DType::f32, gpu);
  const double copy_ms = time_ms([&] {
    CHECK_CUDA(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), src.nbytes(), cudaMemcpyDeviceToDevice,
                               static_cast<cudaStream_t>(cuda::current_stream())));
  });
  const double copy_gbs = 2.0 * static_cast<double>(src.nbytes()) / copy_ms / 1e6;
  std::printf("copy: %.3f ms for %zu bytes -> %.0f GB/s (read + write)\n", copy_ms, src.nbytes(), copy_gbs);
  src = Tensor();
  dst = Tensor();

  {
    Tensor x = randn({n}, DType::bf16, gpu), y = randn({n}, DType::bf16, gpu);
    bench_bandwidth(copy_gbs, "mul bf16 (2^28 elements)", 3.0 * 2 * n, [&] { Tensor z = mul(x, y); });
    bench_bandwidth(copy_gbs, "silu bf16 (2^28 elements)", 2.0 * 2 * n, [&] { Tensor z = silu(x); });
  }
  {
    Tensor x = randn({n / 2}, DType::f32, gpu), y = randn({n / 2}, DType::f32, gpu);
    bench_bandwidth(copy_gbs, "add f32 (2^27 elements)", 3.0 * 4 * (n / 2), [&] { Tensor z = add(x, y); });
  }
  {
    const int64_t rows_ = 65536, dim = 4096;
    Tensor x = randn({rows_, dim}, DType::bf16, gpu), w = randn({dim}, DType::bf16, gpu);
    bench_bandwidth(copy_gbs, "rms_norm bf16 [65536, 4096]", 2.0 * 2 * rows_ * dim + 4.0 * rows_,
                    [&] { Tensor y = rms_norm(x, w); });
    Tensor xg = detach(x).set_requires_grad(true), wg = detach(w).set_requires_grad(true);
    Tensor gy = randn({rows_, dim}, DType::bf16, gpu);
    // fwd reads x, writes y; bwd reads x and dy, writes dx (dw is [dim]). Grads are dropped each time so
    // that no accumulation pass is timed.
    bench_bandwidth(copy_gbs, "rms_norm fwd+bwd bf16 [65536, 4096]", (2.0 + 3.0) * 2 * rows_ * dim, [&] {
      xg.set_grad(Tensor());
      wg.set_grad(Tensor());
      Tensor y = rms_norm(xg, wg);
      backward(y, gy);
    });
  }

  std::printf("\n| op | nsa-train | reference | ratio | target |\n|---|---|---|---|---|\n");
  for (const Row& r : rows)
    std::printf("| %s | %s | %s | %s | %s |\n", r.what.c_str(), r.ours.c_str(), r.reference.c_str(),
                r.ratio.c_str(), r.note.c_str());
  const MemoryStats s = memory_stats(gpu);
  std::printf("\nallocator: %lld allocations, %lld cudaMalloc calls, peak %.2f GiB\n",
              static_cast<long long>(s.num_allocs), static_cast<long long>(s.num_system_allocs),
              static_cast<double>(s.peak_reserved_bytes) / (1 << 30));
  cublasDestroy(handle);
  return 0;
}
