// Copies with dtype conversion (any of the five dtypes to any other, any strides), fill, and the Philox
// random fill.
#include "core/philox.h"
#include "kernels/common/device_utils.cuh"
#include "kernels/elementwise/elementwise.h"

namespace nsa::kernels {
namespace {

constexpr int kThreads = 256;

template <class D, class S, bool kContiguous>
__global__ void copy_kernel(Geometry geo, Strided dst, Strided src) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < geo.numel; i += stride) {
    const int64_t so = kContiguous ? i : strided_offset(i, geo.ndim, geo.sizes, src.strides);
    const int64_t dof = kContiguous ? i : strided_offset(i, geo.ndim, geo.sizes, dst.strides);
    static_cast<D*>(dst.ptr)[dof] = convert<D>(static_cast<const S*>(src.ptr)[so]);
  }
}

template <class T, bool kContiguous>
__global__ void fill_kernel(Geometry geo, Strided dst, T value) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < geo.numel; i += stride) {
    const int64_t o = kContiguous ? i : strided_offset(i, geo.ndim, geo.sizes, dst.strides);
    static_cast<T*>(dst.ptr)[o] = value;
  }
}

// Each thread computes whole Philox blocks (4 words) and writes the elements that fall into the tensor.
template <class T>
__global__ void random_kernel(RandomParams p) {
  const uint64_t first_block = p.offset >> 2;
  const uint64_t last_block = (p.offset + static_cast<uint64_t>(p.numel) + 3) >> 2;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  T* out = static_cast<T*>(p.dst);
  const float span = philox::add_rn(p.b, -p.a);
  for (uint64_t blk = first_block + blockIdx.x * blockDim.x + threadIdx.x; blk < last_block; blk += stride) {
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t e = blk * 4 + lane;
      if (e < p.offset || e >= p.offset + static_cast<uint64_t>(p.numel)) continue;
      const float v = p.dist == RandomDist::uniform ? philox::fma_rn(philox::uniform(p.seed, e), span, p.a)
                                                    : philox::fma_rn(philox::normal(p.seed, e), p.b, p.a);
      out[e - p.offset] = convert<T>(v);
    }
  }
}

}  // namespace

Status launch_copy(const CopyParams& p, cudaStream_t stream) {
  if (p.geo.numel == 0) return {};
  const unsigned grid = grid_for(p.geo.numel, kThreads);
  bool ok = true;
  ok = dispatch_any(p.dst_type,
                    [&]<class D>() {
                      ok = dispatch_any(p.src_type, [&]<class S>() {
                        if (p.geo.contiguous) {
                          copy_kernel<D, S, true><<<grid, kThreads, 0, stream>>>(p.geo, p.dst, p.src);
                        } else {
                          copy_kernel<D, S, false><<<grid, kThreads, 0, stream>>>(p.geo, p.dst, p.src);
                        }
                      });
                    }) &&
       ok;
  return ok ? last_launch() : invalid("copy: unknown dtype");
}

Status launch_fill(const FillParams& p, cudaStream_t stream) {
  if (p.geo.numel == 0) return {};
  const unsigned grid = grid_for(p.geo.numel, kThreads);
  const bool ok = dispatch_any(p.dtype, [&]<class T>() {
    const T v = convert<T>(p.value);
    if (p.geo.contiguous) {
      fill_kernel<T, true><<<grid, kThreads, 0, stream>>>(p.geo, p.dst, v);
    } else {
      fill_kernel<T, false><<<grid, kThreads, 0, stream>>>(p.geo, p.dst, v);
    }
  });
  return ok ? last_launch() : invalid("fill: unknown dtype");
}

Status launch_random(const RandomParams& p, cudaStream_t stream) {
  if (p.numel == 0) return {};
  const int64_t blocks = (p.numel + 7) / 4 + 1;
  const unsigned grid = grid_for(blocks, kThreads);
  const bool ok =
      dispatch_float(p.dtype, [&]<class T>() { random_kernel<T><<<grid, kThreads, 0, stream>>>(p); });
  return ok ? last_launch() : invalid("random: expected a floating dtype");
}

}  // namespace nsa::kernels
