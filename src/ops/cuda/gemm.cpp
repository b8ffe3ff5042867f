// CUDA binding: matrix products through cuBLASLt, with one 32 MiB workspace per device.
#include "kernels/matmul/gemm.h"

#include <array>
#include <mutex>

#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// The cuBLASLt workspace of the current device, allocated on first use and kept. Ops on one stream
// use it one after another; a second compute stream would need its own.
void* gemm_workspace(Device device) {
  static std::mutex mu;
  static std::array<Tensor, 16> buffers;
  std::lock_guard<std::mutex> lock(mu);
  Tensor& t = buffers[device.index];
  if (!t.defined()) t = workspace(kWorkspaceBytes, device);
  return t.data_ptr();
}

}  // namespace

void CudaBackend::gemm(const GemmArgs& g) {
  kernels::GemmParams p{};
  p.dtype = scalar(g.out.dtype());
  p.trans_a = g.trans_a;
  p.trans_b = g.trans_b;
  p.batch = g.batch;
  p.m = g.m;
  p.n = g.n;
  p.k = g.k;
  p.lda = g.lda;
  p.ldb = g.ldb;
  p.ldc = g.ldc;
  p.stride_a = g.stride_a;
  p.stride_b = g.stride_b;
  p.stride_c = g.stride_c;
  p.a = g.a.data_ptr();
  p.b = g.b.data_ptr();
  p.c = g.out.data_ptr();
  p.alpha = g.alpha;
  p.beta = g.beta;
  p.workspace = gemm_workspace(g.out.device());
  p.workspace_bytes = kWorkspaceBytes;
  check(kernels::launch_gemm(p, stream()), "matmul");
}

}  // namespace nsa::cuda_binding
