#include "kernels/common/device_utils.cuh"
#include "kernels/indexing/indexing.h"

namespace nsa::kernels {
namespace {

constexpr int kThreads = 256;

// Element e of the [outer, m, inner] side: (o, j, c).
struct Coord {
  int64_t o, j, c;
};
__device__ __forceinline__ Coord coord(int64_t e, int64_t m, int64_t inner) {
  return {e / (m * inner), (e / inner) % m, e % inner};
}

// Select/gather (kAdd false): out[e] = src[row(e)]; add/scatter (kAdd true): out[row(e)] += src[e], where e
// walks the [outer, m, inner] side and row(e) replaces its middle coordinate by the index.
template <class T, class I, bool kPerElement, bool kAdd>
__global__ void index_kernel(IndexParams p) {
  const int64_t total = p.outer * p.m * p.inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const Coord k = coord(e, p.m, p.inner);
    const int64_t row = static_cast<int64_t>(static_cast<const I*>(p.index)[kPerElement ? e : k.j]);
    const bool valid = row >= 0 && row < p.n;
    if (!valid) atomicOr(p.error_flag, kIndexOutOfRange);
    const int64_t at = (k.o * p.n + row) * p.inner + k.c;
    if constexpr (kAdd) {
      if (valid) atomicAdd(static_cast<T*>(p.out) + at, static_cast<const T*>(p.src)[e]);
    } else {
      static_cast<T*>(p.out)[e] = valid ? static_cast<const T*>(p.src)[at] : T(0);
    }
  }
}

template <bool kPerElement, bool kAdd>
Status launch(const IndexParams& p, cudaStream_t stream) {
  const int64_t total = p.outer * p.m * p.inner;
  if (total == 0) return {};
  const unsigned grid = grid_for(total, kThreads);
  bool ok = false;
  auto body = [&]<class T>() {
    ok = dispatch_index(p.index_type, [&]<class I>() {
      index_kernel<T, I, kPerElement, kAdd><<<grid, kThreads, 0, stream>>>(p);
    });
  };
  if constexpr (kAdd) {
    if (p.dtype == ScalarType::f32) body.template operator()<float>();
    if (p.dtype == ScalarType::f64) body.template operator()<double>();
  } else {
    dispatch_any(p.dtype, body);
  }
  return ok ? last_launch()
            : invalid(kAdd ? "index add: dtype must be f32 or f64" : "index: unsupported dtypes");
}

}  // namespace

Status launch_index_select(const IndexParams& p, cudaStream_t stream) {
  return launch<false, false>(p, stream);
}
Status launch_index_add(const IndexParams& p, cudaStream_t stream) { return launch<false, true>(p, stream); }
Status launch_gather(const IndexParams& p, cudaStream_t stream) { return launch<true, false>(p, stream); }
Status launch_scatter_add(const IndexParams& p, cudaStream_t stream) { return launch<true, true>(p, stream); }

}  // namespace nsa::kernels

namespace nsa::kernels {
namespace {

template <class I, class M>
__global__ void shard_index_kernel(ShardIndexParams p) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n; i += stride) {
    const int64_t r = static_cast<int64_t>(static_cast<const I*>(p.ids)[i]) - p.begin;
    const bool in = r >= 0 && r < p.count;
    p.local[i] = in ? r : 0;
    static_cast<M*>(p.mask)[i] = M(in ? 1.0f : 0.0f);
  }
}

}  // namespace

Status launch_shard_index(const ShardIndexParams& p, cudaStream_t stream) {
  if (p.n == 0) return {};
  const unsigned grid = grid_for(p.n, kThreads);
  bool ok = false;
  dispatch_index(p.id_type, [&]<class I>() {
    ok = dispatch_float(p.mask_type, [&]<class M>() {
      shard_index_kernel<I, M><<<grid, kThreads, 0, stream>>>(p);
    });
  });
  return ok ? last_launch() : invalid("shard_index: unsupported dtypes");
}

}  // namespace nsa::kernels
