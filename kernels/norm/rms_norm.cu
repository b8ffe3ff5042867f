#include <algorithm>

#include "kernels/common/device_utils.cuh"
#include "kernels/norm/rms_norm.h"
#include "kernels/reduce/reduce.h"

namespace nsa::kernels {
namespace {

constexpr int kBackwardThreads = 256;

// V elements at column c (V = 1, or 16 bytes' worth).
template <class T, int V>
struct Pack {
  T v[V];
};
template <class T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
  if constexpr (V == 1) {
    return Pack<T, 1>{{p[0]}};
  } else {
    const Vec16<T> q = *reinterpret_cast<const Vec16<T>*>(p);
    Pack<T, V> r;
#pragma unroll
    for (int e = 0; e < V; ++e) r.v[e] = q.v[e];
    return r;
  }
}
template <class T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& r) {
  if constexpr (V == 1) {
    p[0] = r.v[0];
  } else {
    Vec16<T> q;
#pragma unroll
    for (int e = 0; e < V; ++e) q.v[e] = r.v[e];
    *reinterpret_cast<Vec16<T>*>(p) = q;
  }
}

template <class T, int V>
__global__ void rms_norm_kernel(const T* x, const T* w, T* y, acc_t<T>* rstd, int64_t dim, acc_t<T> eps) {
  using A = acc_t<T>;
  const T* xr = x + blockIdx.x * dim;
  T* yr = y + blockIdx.x * dim;
  A ss = 0;
  for (int64_t c = threadIdx.x * V; c < dim; c += blockDim.x * V) {
    const Pack<T, V> px = load_pack<T, V>(xr + c);
#pragma unroll
    for (int e = 0; e < V; ++e) ss += to_acc(px.v[e]) * to_acc(px.v[e]);
  }
  ss = block_sum(ss);
  const A r = A(1) / sqrt(ss / static_cast<A>(dim) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t c = threadIdx.x * V; c < dim; c += blockDim.x * V) {
    const Pack<T, V> px = load_pack<T, V>(xr + c), pw = load_pack<T, V>(w + c);
    Pack<T, V> py;
#pragma unroll
    for (int e = 0; e < V; ++e) py.v[e] = from_acc<T>(to_acc(px.v[e]) * r * to_acc(pw.v[e]));
    store_pack<T, V>(yr + c, py);
  }
}

// Thread t owns the packs at columns (k·blockDim + t)·V for k < K.
template <class T, int V, int K>
__global__ void rms_norm_backward_kernel(T* gx, acc_t<T>* gw_partial, const T* gy, const T* x, const T* w,
                                         const acc_t<T>* rstd, int64_t rows, int64_t dim,
                                         int64_t rows_per_block) {
  using A = acc_t<T>;
  A wv[K][V], acc[K][V];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t c = (k * static_cast<int64_t>(blockDim.x) + threadIdx.x) * V;
    const bool in = c < dim;
    Pack<T, V> pw;
    if (in) pw = load_pack<T, V>(w + c);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      wv[k][e] = in ? to_acc(pw.v[e]) : A(0);
      acc[k][e] = 0;
    }
  }
  const int64_t r0 = blockIdx.x * rows_per_block, r1 = min(rows, r0 + rows_per_block);
  // The next row's loads are issued before this row's reduction: two rows in flight per thread.
  Pack<T, V> px[K], pg[K];
  auto load_row = [&](int64_t row, Pack<T, V>* xs, Pack<T, V>* gs) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t c = (k * static_cast<int64_t>(blockDim.x) + threadIdx.x) * V;
      if (c < dim) {
        xs[k] = load_pack<T, V>(x + row * dim + c);
        gs[k] = load_pack<T, V>(gy + row * dim + c);
      }
    }
  };
  if (r0 < r1) load_row(r0, px, pg);
  for (int64_t row = r0; row < r1; ++row) {
    Pack<T, V> nx[K], ng[K];
    if (row + 1 < r1) load_row(row + 1, nx, ng);
    A dot = 0;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t c = (k * static_cast<int64_t>(blockDim.x) + threadIdx.x) * V;
      if (c >= dim) continue;
#pragma unroll
      for (int e = 0; e < V; ++e) dot += to_acc(pg[k].v[e]) * wv[k][e] * to_acc(px[k].v[e]);
    }
    dot = block_sum(dot);
    const A r = rstd[row];
    const A coef = dot / static_cast<A>(dim) * r * r * r;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t c = (k * static_cast<int64_t>(blockDim.x) + threadIdx.x) * V;
      if (c >= dim) continue;
      Pack<T, V> out;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const A xv = to_acc(px[k].v[e]), gv = to_acc(pg[k].v[e]);
        out.v[e] = from_acc<T>(r * wv[k][e] * gv - xv * coef);
        acc[k][e] += gv * xv * r;
      }
      store_pack<T, V>(gx + row * dim + c, out);
    }
#pragma unroll
    for (int k = 0; k < K; ++k) {
      px[k] = nx[k];
      pg[k] = ng[k];
    }
  }
  if (!gw_partial) return;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t c = (k * static_cast<int64_t>(blockDim.x) + threadIdx.x) * V;
    if (c >= dim) continue;
#pragma unroll
    for (int e = 0; e < V; ++e) gw_partial[blockIdx.x * dim + c + e] = acc[k][e];
  }
}

bool aligned16(const void* p) { return p == nullptr || (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The vector width usable for rows of `dim` elements at these pointers.
template <class T>
int vector_width(int64_t dim, std::initializer_list<const void*> ptrs) {
  constexpr int V = Vec16<T>::kSize;
  if (dim % V != 0) return 1;
  for (const void* p : ptrs)
    if (!aligned16(p)) return 1;
  return V;
}

// Rows too wide (or unaligned) for the register version: the same maths re-reading the row from memory;
// a thread still owns its columns across rows, so its grad_weight partial needs no atomics.
template <class T>
__global__ void rms_norm_backward_generic_kernel(T* gx, acc_t<T>* gw_partial, const T* gy, const T* x,
                                                 const T* w, const acc_t<T>* rstd, int64_t rows, int64_t dim,
                                                 int64_t rows_per_block) {
  using A = acc_t<T>;
  A* part = gw_partial ? gw_partial + blockIdx.x * dim : nullptr;
  if (part)
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) part[c] = 0;
  const int64_t r0 = blockIdx.x * rows_per_block, r1 = min(rows, r0 + rows_per_block);
  for (int64_t row = r0; row < r1; ++row) {
    const T* xr = x + row * dim;
    const T* gr = gy + row * dim;
    A dot = 0;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
      dot += to_acc(gr[c]) * to_acc(w[c]) * to_acc(xr[c]);
    dot = block_sum(dot);
    const A r = rstd[row];
    const A coef = dot / static_cast<A>(dim) * r * r * r;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
      const A xv = to_acc(xr[c]), gv = to_acc(gr[c]);
      gx[row * dim + c] = from_acc<T>(r * to_acc(w[c]) * gv - xv * coef);
      if (part) part[c] += gv * xv * r;
    }
  }
}

// How the backward runs: the register kernel with K packs per thread (K = 0: the generic kernel), its
// block size, and one block per resident slot on the GPU (no tail wave; each block walks its rows).
struct BackwardPlan {
  int k = 0;
  int threads = kBackwardThreads;
  int64_t chunks = 1;
};

template <class T>
using BackwardKernel = void (*)(T*, acc_t<T>*, const T*, const T*, const T*, const acc_t<T>*, int64_t,
                                int64_t, int64_t);

template <class T>
BackwardKernel<T> backward_kernel(int k) {
  constexpr int V = Vec16<T>::kSize;
  switch (k) {
    case 1:
      return rms_norm_backward_kernel<T, V, 1>;
    case 2:
      return rms_norm_backward_kernel<T, V, 2>;
    case 4:
      return rms_norm_backward_kernel<T, V, 4>;
    default:
      return rms_norm_backward_generic_kernel<T>;
  }
}

template <class T>
BackwardPlan plan_backward(const RmsNormBackwardParams& p) {
  constexpr int V = Vec16<T>::kSize;
  BackwardPlan plan;
  if (vector_width<T>(p.dim, {p.x, p.weight, p.grad_x, p.grad_y}) == V) {
    for (int k : {1, 2, 4}) {  // wider rows would spill: they take the generic kernel
      const int64_t threads = ((p.dim + V * k - 1) / (V * k) + 31) / 32 * 32;
      if (threads <= 1024) {
        plan.k = k;
        plan.threads = static_cast<int>(std::max<int64_t>(threads, 64));
        break;
      }
    }
  }
  int per_sm = 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, backward_kernel<T>(plan.k), plan.threads, 0) !=
          cudaSuccess ||
      per_sm < 1)
    per_sm = 1;
  plan.chunks = std::max<int64_t>(1, std::min<int64_t>(p.rows, static_cast<int64_t>(per_sm) * sm_count()));
  return plan;
}

int64_t backward_chunks(const RmsNormBackwardParams& p) {
  int64_t chunks = 1;
  dispatch_float(p.dtype, [&]<class T>() { chunks = plan_backward<T>(p).chunks; });
  return chunks;
}

template <class T>
void launch_backward(const RmsNormBackwardParams& p, const BackwardPlan& plan, cudaStream_t stream) {
  using A = acc_t<T>;
  backward_kernel<T>(plan.k)<<<static_cast<unsigned>(plan.chunks), plan.threads, 0, stream>>>(
      static_cast<T*>(p.grad_x), p.grad_weight ? static_cast<A*>(p.workspace) : nullptr,
      static_cast<const T*>(p.grad_y), static_cast<const T*>(p.x), static_cast<const T*>(p.weight),
      static_cast<const A*>(p.rstd), p.rows, p.dim, (p.rows + plan.chunks - 1) / plan.chunks);
}

}  // namespace

Status launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.dim == 0) return {};
  if (p.rows > 0x7fffffff) return invalid("rms_norm: too many rows");
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    using A = acc_t<T>;
    const int V = vector_width<T>(p.dim, {p.x, p.weight, p.y});
    const int64_t packs = p.dim / V;
    const int threads = static_cast<int>(std::clamp<int64_t>((packs + 31) / 32 * 32, 32, 512));
    const auto grid = static_cast<unsigned>(p.rows);
    const T* x = static_cast<const T*>(p.x);
    const T* w = static_cast<const T*>(p.weight);
    T* y = static_cast<T*>(p.y);
    A* rstd = static_cast<A*>(p.rstd);
    if (V == 1) {
      rms_norm_kernel<T, 1><<<grid, threads, 0, stream>>>(x, w, y, rstd, p.dim, static_cast<A>(p.eps));
    } else {
      rms_norm_kernel<T, Vec16<T>::kSize>
          <<<grid, threads, 0, stream>>>(x, w, y, rstd, p.dim, static_cast<A>(p.eps));
    }
  });
  return ok ? last_launch() : invalid("rms_norm: expected a floating dtype");
}

size_t rms_norm_backward_workspace_bytes(const RmsNormBackwardParams& p) {
  if (!p.grad_weight) return 0;
  const size_t acc = p.dtype == ScalarType::f64 ? 8 : 4;
  return static_cast<size_t>(backward_chunks(p) * p.dim) * acc;
}

Status launch_rms_norm_backward(const RmsNormBackwardParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.dim == 0) return {};
  if (p.grad_weight && !p.workspace) return invalid("rms_norm_backward: workspace missing");
  int64_t chunks = 1;
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    const BackwardPlan plan = plan_backward<T>(p);
    chunks = plan.chunks;
    launch_backward<T>(p, plan, stream);
  });
  if (!ok) return invalid("rms_norm_backward: expected a floating dtype");
  Status s = last_launch();
  if (!s.ok() || !p.grad_weight) return s;
  // grad_weight = Σ over chunks of the partials (a column reduction in a fixed order: deterministic).
  const ScalarType acc = p.dtype == ScalarType::f64 ? ScalarType::f64 : ScalarType::f32;
  const ReduceParams r{ReduceOp::sum, acc,   p.dtype, p.workspace, p.grad_weight, nullptr, 1,
                       chunks,        p.dim, 1.0,     nullptr};
  return launch_reduce(r, stream);
}

}  // namespace nsa::kernels
