// Device-side helpers: accumulation types, loads/stores through the accumulation type, warp and block
// reductions, 16-byte vectors, the strided index walk. Included by .cu files only.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

using bf16_t = __nv_bfloat16;

// f64 accumulates in double, everything else in float.
template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
__device__ __forceinline__ acc_t<T> to_acc(T v) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return __bfloat162float(v);
  } else {
    return static_cast<acc_t<T>>(v);
  }
}

template <class T, class A>
__device__ __forceinline__ T from_acc(A v) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// Any scalar to any scalar (copy kernels; fill converts its value on the host): bf16 goes through float.
template <class D, class S>
__host__ __device__ __forceinline__ D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<S, bf16_t>) {
    return convert<D>(__bfloat162float(v));
  } else if constexpr (std::is_same_v<D, bf16_t>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else {
    return static_cast<D>(v);
  }
}

// 16 bytes of T, for vectorised loads and stores (LDG.128 / STG.128).
template <class T>
struct alignas(16) Vec16 {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024). Every thread gets the result.
template <class T>
__device__ __forceinline__ T block_sum(T v) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : T(0);
  return warp_sum(v);
}

// The order of max / argmax / top-k candidates: larger value first, then lower index; a NaN ranks above
// every number (it propagates), the earliest NaN first.
template <class A>
__device__ __forceinline__ bool ranks_before(A v, int64_t i, A w, int64_t j) {
  const bool vn = isnan(v), wn = isnan(w);
  if (vn != wn) return vn;
  if (!vn && v != w) return v > w;
  return i < j;
}

// Offset of linear element i of `sizes` in an operand with `strides` (row-major walk).
__device__ __forceinline__ int64_t strided_offset(int64_t i, int ndim, const int64_t* sizes,
                                                  const int64_t* strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    const int64_t c = i % sizes[d];
    i /= sizes[d];
    off += c * strides[d];
  }
  return off;
}

// A grid for a grid-stride loop over `work` items with `threads` per block.
inline unsigned grid_for(int64_t work, int threads) {
  const int64_t blocks = (work + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(sm_count()) * 16;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Calls f.template operator()<T>() for the float types.
template <class F>
bool dispatch_float(ScalarType t, F&& f) {
  switch (t) {
    case ScalarType::f64:
      f.template operator()<double>();
      return true;
    case ScalarType::f32:
      f.template operator()<float>();
      return true;
    case ScalarType::bf16:
      f.template operator()<bf16_t>();
      return true;
    default:
      return false;
  }
}

template <class F>
bool dispatch_index(ScalarType t, F&& f) {
  switch (t) {
    case ScalarType::i32:
      f.template operator()<int32_t>();
      return true;
    case ScalarType::i64:
      f.template operator()<int64_t>();
      return true;
    default:
      return false;
  }
}

// Integer or float types.
template <class F>
bool dispatch_any(ScalarType t, F&& f) {
  return dispatch_index(t, f) || dispatch_float(t, f);
}

}  // namespace nsa::kernels
