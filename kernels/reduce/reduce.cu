#include <algorithm>

#include "kernels/common/device_utils.cuh"
#include "kernels/reduce/reduce.h"

namespace nsa::kernels {
namespace {

constexpr int kRowThreads = 256;
constexpr int kTileX = 32, kTileY = 8;
constexpr int64_t kMinChunk = 2048;  // elements of n per chunk before splitting pays

// Chunks n is split into (sums only): enough blocks for about two waves, chunks of at least kMinChunk.
int64_t plan_chunks(const ReduceParams& p) {
  if (p.op != ReduceOp::sum) return 1;
  const int64_t blocks = p.inner == 1 ? p.outer : p.outer * ((p.inner + kTileX - 1) / kTileX);
  const int64_t want = 2 * static_cast<int64_t>(sm_count());
  if (blocks >= want) return 1;
  const int64_t by_work = (want + blocks - 1) / blocks;
  const int64_t by_size = std::max<int64_t>(1, p.n / kMinChunk);
  return std::max<int64_t>(1, std::min<int64_t>({by_work, by_size, 1024}));
}

template <class T, class O>
__device__ __forceinline__ void store_out(O* out, int64_t i, acc_t<T> v) {
  if constexpr (std::is_same_v<O, acc_t<T>>) {
    out[i] = v;
  } else {
    out[i] = from_acc<O>(v);
  }
}

// One block per (row, chunk): sums in[row, chunk range]; writes out[row * chunks + chunk].
template <class T, class O>
__global__ void row_sum_kernel(const T* in, O* out, int64_t n, int64_t chunks, acc_t<T> scale) {
  const int64_t row = blockIdx.x, chunk = blockIdx.y;
  const int64_t per = (n + chunks - 1) / chunks;
  const int64_t begin = chunk * per, end = min(n, begin + per);
  const T* r = in + row * n;
  acc_t<T> acc = 0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) acc += to_acc(r[j]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) store_out<T>(out, row * chunks + chunk, acc * scale);
}

// Columns: block (32, 8) handles 32 consecutive inner positions of one outer index and one chunk of n.
template <class T, class O>
__global__ void col_sum_kernel(const T* in, O* out, int64_t n, int64_t inner, int64_t chunks,
                               acc_t<T> scale) {
  __shared__ acc_t<T> tile[kTileY][kTileX + 1];
  const int64_t tiles = (inner + kTileX - 1) / kTileX;
  const int64_t o = blockIdx.x / tiles, col = (blockIdx.x % tiles) * kTileX + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  const int64_t per = (n + chunks - 1) / chunks;
  const int64_t begin = chunk * per, end = min(n, begin + per);
  acc_t<T> acc = 0;
  if (col < inner)
    for (int64_t j = begin + threadIdx.y; j < end; j += kTileY) acc += to_acc(in[(o * n + j) * inner + col]);
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < inner) {
    acc_t<T> total = 0;
#pragma unroll
    for (int y = 0; y < kTileY; ++y) total += tile[y][threadIdx.x];
    store_out<T>(out, (o * chunks + chunk) * inner + col, total * scale);
  }
}

// Max and first argmax along n, in the order of ranks_before.
template <class T>
__global__ void row_max_kernel(const T* in, T* out, int64_t* indices, int64_t n) {
  using A = acc_t<T>;
  __shared__ A sv[kRowThreads];
  __shared__ int64_t si[kRowThreads];
  const int64_t row = blockIdx.x;
  A best = to_acc(in[row * n]);
  int64_t bi = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const A v = to_acc(in[row * n + j]);
    if (ranks_before(v, j, best, bi)) {
      best = v;
      bi = j;
    }
  }
  sv[threadIdx.x] = best;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s &&
        ranks_before(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
      sv[threadIdx.x] = sv[threadIdx.x + s];
      si[threadIdx.x] = si[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out[row] = from_acc<T>(sv[0]);
    indices[row] = si[0];
  }
}

template <class T>
__global__ void col_max_kernel(const T* in, T* out, int64_t* indices, int64_t outer, int64_t n,
                               int64_t inner) {
  using A = acc_t<T>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < outer * inner;
       e += stride) {
    const int64_t o = e / inner, c = e % inner;
    A best = to_acc(in[o * n * inner + c]);
    int64_t bi = 0;
    for (int64_t j = 1; j < n; ++j) {
      const A v = to_acc(in[(o * n + j) * inner + c]);
      if (ranks_before(v, j, best, bi)) {
        best = v;
        bi = j;
      }
    }
    out[e] = from_acc<T>(best);
    indices[e] = bi;
  }
}

template <class T, class O>
void launch_sum(const T* in, O* out, int64_t outer, int64_t n, int64_t inner, int64_t chunks, acc_t<T> scale,
                cudaStream_t stream) {
  if (inner == 1) {
    row_sum_kernel<T, O>
        <<<dim3(static_cast<unsigned>(outer), static_cast<unsigned>(chunks)), kRowThreads, 0, stream>>>(
            in, out, n, chunks, scale);
  } else {
    const dim3 grid(static_cast<unsigned>((inner + kTileX - 1) / kTileX * outer),
                    static_cast<unsigned>(chunks));
    col_sum_kernel<T, O><<<grid, dim3(kTileX, kTileY), 0, stream>>>(in, out, n, inner, chunks, scale);
  }
}

}  // namespace

size_t reduce_workspace_bytes(const ReduceParams& p) {
  const int64_t chunks = plan_chunks(p);
  if (chunks == 1) return 0;
  const size_t acc = p.dtype == ScalarType::f64 ? 8 : 4;
  return static_cast<size_t>(p.outer * chunks * p.inner) * acc;
}

Status launch_reduce(const ReduceParams& p, cudaStream_t stream) {
  if (p.outer == 0 || p.inner == 0) return {};
  if (p.n == 0) return invalid("reduce: empty reduction");
  if (p.outer * ((p.inner + kTileX - 1) / kTileX) > 0x7fffffff) return invalid("reduce: too many outputs");
  const int64_t chunks = plan_chunks(p);
  if (chunks > 1 && !p.workspace) return invalid("reduce: workspace missing");
  if (p.out_dtype != p.dtype) {
    if (p.op != ReduceOp::sum || p.dtype != ScalarType::f32 || p.out_dtype != ScalarType::bf16 || chunks > 1)
      return invalid("reduce: output dtype differs from the input's (only f32 -> bf16 sums in one pass)");
    launch_sum<float, bf16_t>(static_cast<const float*>(p.in), static_cast<bf16_t*>(p.out), p.outer, p.n,
                              p.inner, 1, static_cast<float>(p.scale), stream);
    return last_launch();
  }
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    using A = acc_t<T>;
    const T* in = static_cast<const T*>(p.in);
    T* out = static_cast<T*>(p.out);
    if (p.op == ReduceOp::max) {
      if (p.inner == 1) {
        row_max_kernel<T>
            <<<static_cast<unsigned>(p.outer), kRowThreads, 0, stream>>>(in, out, p.indices, p.n);
      } else {
        col_max_kernel<T><<<grid_for(p.outer * p.inner, kRowThreads), kRowThreads, 0, stream>>>(
            in, out, p.indices, p.outer, p.n, p.inner);
      }
      return;
    }
    if (chunks == 1) {
      launch_sum<T, T>(in, out, p.outer, p.n, p.inner, 1, static_cast<A>(p.scale), stream);
      return;
    }
    // Pass 1: partial sums [outer, chunks, inner]; pass 2: their sum over chunks, scaled.
    A* partial = static_cast<A*>(p.workspace);
    launch_sum<T, A>(in, partial, p.outer, p.n, p.inner, chunks, A(1), stream);
    launch_sum<A, T>(partial, out, p.outer, chunks, p.inner, 1, static_cast<A>(p.scale), stream);
  });
  return ok ? last_launch() : invalid("reduce: expected a floating dtype");
}

}  // namespace nsa::kernels
