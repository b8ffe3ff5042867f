#include <cmath>

#include "kernels/common/device_utils.cuh"
#include "kernels/topk/topk.h"

namespace nsa::kernels {
namespace {

template <class T>
__global__ void topk_kernel(const T* in, T* values, int64_t* indices, int64_t n, int64_t k) {
  using A = acc_t<T>;
  __shared__ A sv[32];
  __shared__ int64_t si[32];
  const T* row = in + blockIdx.x * n;
  A prev_v = 0;
  int64_t prev_i = -1;  // no pick yet
  for (int64_t round = 0; round < k; ++round) {
    A best_v = 0;
    int64_t best_i = -1;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const A v = to_acc(row[j]);
      if (prev_i >= 0 && !ranks_before(prev_v, prev_i, v, j)) continue;  // already picked
      if (best_i < 0 || ranks_before(v, j, best_v, best_i)) {
        best_v = v;
        best_i = j;
      }
    }
    // Warp then block argmax; −1 marks "no candidate".
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const A ov = __shfl_xor_sync(0xffffffffu, best_v, o);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, best_i, o);
      if (oi >= 0 && (best_i < 0 || ranks_before(ov, oi, best_v, best_i))) {
        best_v = ov;
        best_i = oi;
      }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) {
      sv[warp] = best_v;
      si[warp] = best_i;
    }
    __syncthreads();
    best_i = -1;
    for (int w = 0; w < warps; ++w)
      if (si[w] >= 0 && (best_i < 0 || ranks_before(sv[w], si[w], best_v, best_i))) {
        best_v = sv[w];
        best_i = si[w];
      }
    if (threadIdx.x == 0) {
      values[blockIdx.x * k + round] = row[best_i];
      indices[blockIdx.x * k + round] = best_i;
    }
    prev_v = best_v;
    prev_i = best_i;
  }
}

}  // namespace

Status launch_topk(const TopkParams& p, cudaStream_t stream) {
  if (p.rows == 0) return {};
  if (p.k < 1 || p.k > p.n) return invalid("topk: k out of range");
  if (p.rows > 0x7fffffff) return invalid("topk: too many rows");
  const int threads = p.n <= 32 ? 32 : (p.n <= 128 ? 64 : (p.n <= 1024 ? 128 : 256));
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    topk_kernel<T><<<static_cast<unsigned>(p.rows), threads, 0, stream>>>(
        static_cast<const T*>(p.in), static_cast<T*>(p.values), p.indices, p.n, p.k);
  });
  return ok ? last_launch() : invalid("topk: expected a floating dtype");
}

}  // namespace nsa::kernels
