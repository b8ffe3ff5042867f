// The running (max, sum of exp(x - max)) pair of online softmax and its block-wide merge; used by the
// softmax and cross-entropy kernels.
#pragma once

#include <cmath>

#include "kernels/common/device_utils.cuh"

namespace nsa::kernels {

template <class A>
struct MaxSum {
  A m;  // running max (−inf when empty)
  A s;  // Σ exp(x − m)

  __device__ __forceinline__ void add(A x) {
    if (x == -INFINITY) return;  // contributes exp(−inf) = 0
    if (x > m) {
      s = s * exp(m - x) + A(1);
      m = x;
    } else {
      s += exp(x - m);
    }
  }
  __device__ __forceinline__ void merge(A om, A os) {
    if (om == -INFINITY) return;
    if (m == -INFINITY) {
      m = om;
      s = os;
      return;
    }
    const A nm = max(m, om);
    s = s * exp(m - nm) + os * exp(om - nm);
    m = nm;
  }
  // log Σ exp(x) over everything added.
  __device__ __forceinline__ A lse() const { return m + log(s); }
};

// Merges the pairs of all threads of the block; every thread gets the result.
template <class A>
__device__ __forceinline__ MaxSum<A> block_merge(MaxSum<A> v) {
  __shared__ A sm[32], ss[32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const A om = __shfl_xor_sync(0xffffffffu, v.m, o), os = __shfl_xor_sync(0xffffffffu, v.s, o);
    v.merge(om, os);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sm[warp] = v.m;
    ss[warp] = v.s;
  }
  __syncthreads();
  MaxSum<A> r{A(-INFINITY), A(0)};
  for (int w = 0; w < warps; ++w) r.merge(sm[w], ss[w]);  // same order in every thread: identical results
  return r;
}

}  // namespace nsa::kernels
