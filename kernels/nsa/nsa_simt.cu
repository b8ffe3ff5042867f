// CUDA-core path of the NSA kernels: one warp per query row (forward, dQ, selection) or per key row (dK/dV),
// the lanes splitting the head dim, accumulation in double. It runs what the tensor-core kernels do not
// (f32, f64, other head dims, large groups) and is exact enough for 1e-5 checks against the CPU reference.
// Speed is not its purpose.
#include <cmath>

#include "kernels/common/device_utils.cuh"
#include "kernels/nsa/nsa_device.cuh"
#include "kernels/nsa/nsa_internal.h"

namespace nsa::kernels::nsa_impl {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kChunks = kSimtMaxDim / 32;  // head-dim elements per lane

__device__ __forceinline__ double read(const double* p) { return *p; }
__device__ __forceinline__ double read(const float* p) { return *p; }
__device__ __forceinline__ double read(const bf16_t* p) { return __bfloat162float(*p); }

template <class T>
__device__ __forceinline__ void load_row(double (&r)[kChunks], const T* row, int64_t dim, int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int64_t d = lane + 32 * c;
    r[c] = d < dim ? read(row + d) : 0.0;
  }
}

template <class T>
__device__ __forceinline__ double row_dot(const double (&r)[kChunks], const T* row, int64_t dim, int lane) {
  double acc = 0;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < dim) acc += r[c] * read(row + d);
  }
  return warp_sum(acc);
}

template <class T>
__device__ __forceinline__ void store_row(T* row, const double (&r)[kChunks], double factor, int64_t dim,
                                          int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < dim) row[d] = from_acc<T>(static_cast<acc_t<T>>(r[c] * factor));
  }
}

template <class T>
using lse_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// The key rows query t of KV head g sees, in the CPU reference's order.
struct CmpKeys {
  int64_t n_cmp;
  NsaGeometry geo;
  template <class F>
  __device__ void each(int64_t, int64_t t, int64_t, int, F&& f) const {
    const int64_t v = visible_cmp(t, n_cmp, geo.cmp_block, geo.cmp_stride);
    for (int64_t i = 0; i < v; ++i) f(i);
  }
};

template <class I>
struct SlcKeys {
  const I* indices;
  int64_t n, seq, heads_kv, n_slc, block;
  unsigned* flag;
  template <class F>
  __device__ void each(int64_t b, int64_t t, int64_t g, int lane, F&& f) const {
    const I* row = indices + ((b * seq + t) * heads_kv + g) * n;
    for (int64_t slot = 0; slot < n; ++slot) {
      const int64_t j = static_cast<int64_t>(row[slot]);
      if (j == -1) continue;
      if (j < -1 || j >= n_slc) {
        if (lane == 0 && flag) atomicOr(flag, kIndexOutOfRange);
        continue;
      }
      const int64_t end = (j + 1) * block < t + 1 ? (j + 1) * block : t + 1;
      for (int64_t s = j * block; s < end; ++s) f(s);
    }
  }
};

// One warp per query row (b, t, h): online softmax over the keys.
template <class T, class Keys>
__global__ void forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                               T* __restrict__ out, lse_t<T>* __restrict__ lse, NsaSizes sz, double scale,
                               Keys keys) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= sz.batch * sz.seq * sz.heads_q) return;
  const int64_t h = row % sz.heads_q, t = (row / sz.heads_q) % sz.seq, b = row / (sz.heads_q * sz.seq);
  const int64_t g = h / (sz.heads_q / sz.heads_kv);
  double qr[kChunks], o[kChunks] = {};
  load_row(qr, q + row * sz.dim_k, sz.dim_k, lane);
  double m = -INFINITY, l = 0;
  keys.each(b, t, g, lane, [&](int64_t s) {
    const int64_t kv = (b * sz.keys + s) * sz.heads_kv + g;
    const double score = row_dot(qr, k + kv * sz.dim_k, sz.dim_k, lane) * scale;
    const double mn = fmax(m, score), corr = exp(m - mn), prob = exp(score - mn);
    l = l * corr + prob;
    const T* vr = v + kv * sz.dim_v;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t d = lane + 32 * c;
      o[c] = o[c] * corr + (d < sz.dim_v ? prob * read(vr + d) : 0.0);
    }
    m = mn;
  });
  store_row(out + row * sz.dim_v, o, l > 0 ? 1.0 / l : 0.0, sz.dim_v, lane);
  if (lane == 0)
    lse[(b * sz.heads_q + h) * sz.seq + t] = static_cast<lse_t<T>>(l > 0 ? m + log(l) : -INFINITY);
}

// dQ, one warp per query row: dS = P ∘ (dO·v − delta), dQ = scale · Σ dS · k.
template <class T, class Keys>
__global__ void dq_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                          const T* __restrict__ v, const lse_t<T>* __restrict__ lse,
                          const double* __restrict__ delta, T* __restrict__ dq, NsaSizes sz, double scale,
                          Keys keys) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= sz.batch * sz.seq * sz.heads_q) return;
  const int64_t h = row % sz.heads_q, t = (row / sz.heads_q) % sz.seq, b = row / (sz.heads_q * sz.seq);
  const int64_t g = h / (sz.heads_q / sz.heads_kv), stat = (b * sz.heads_q + h) * sz.seq + t;
  const double row_lse = static_cast<double>(lse[stat]), row_delta = delta[stat];
  double qr[kChunks], dor[kChunks], acc[kChunks] = {};
  load_row(qr, q + row * sz.dim_k, sz.dim_k, lane);
  load_row(dor, dout + row * sz.dim_v, sz.dim_v, lane);
  keys.each(b, t, g, lane, [&](int64_t s) {
    const int64_t kv = (b * sz.keys + s) * sz.heads_kv + g;
    const T* kr = k + kv * sz.dim_k;
    const double prob = exp(row_dot(qr, kr, sz.dim_k, lane) * scale - row_lse);
    const double ds = prob * (row_dot(dor, v + kv * sz.dim_v, sz.dim_v, lane) - row_delta);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t d = lane + 32 * c;
      if (d < sz.dim_k) acc[c] += ds * read(kr + d);
    }
  });
  store_row(dq + row * sz.dim_k, acc, scale, sz.dim_k, lane);
}

// The query rows (t, h) that see key s of KV head g, in increasing t, then h.
struct CmpRows {
  NsaGeometry geo;
  template <class F>
  __device__ void each(int64_t, int64_t s, int64_t, const NsaSizes& sz, F&& f) const {
    const int64_t group = sz.heads_q / sz.heads_kv;
    for (int64_t t = s * geo.cmp_stride + geo.cmp_block - 1; t < sz.seq; ++t)
      for (int64_t hh = 0; hh < group; ++hh) f(t, hh);
  }
};

struct SlcRows {
  NsaGeometry geo;
  const int* row_start;
  const uint64_t* sorted;
  template <class F>
  __device__ void each(int64_t b, int64_t s, int64_t g, const NsaSizes& sz, F&& f) const {
    const int64_t group = sz.heads_q / sz.heads_kv;
    const int64_t x = (s / geo.slc_block) * sz.batch * sz.heads_kv + b * sz.heads_kv + g;
    for (int64_t e = row_start[x]; e < row_start[x + 1]; ++e) {
      const int64_t t = static_cast<int64_t>(sorted[e] % static_cast<uint64_t>(sz.seq));
      if (t < s) continue;
      for (int64_t hh = 0; hh < group; ++hh) f(t, hh);
    }
  }
};

// dK/dV, one warp per key row (b, s, g): dV = Σ P·dO, dK = scale · Σ dS·q over the rows that see s.
template <class T, class Rows>
__global__ void dkdv_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                            const T* __restrict__ v, const lse_t<T>* __restrict__ lse,
                            const double* __restrict__ delta, T* __restrict__ dk, T* __restrict__ dv,
                            NsaSizes sz, double scale, Rows rows) {
  const int lane = threadIdx.x & 31;
  const int64_t kv = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (kv >= sz.batch * sz.keys * sz.heads_kv) return;
  const int64_t g = kv % sz.heads_kv, s = (kv / sz.heads_kv) % sz.keys, b = kv / (sz.heads_kv * sz.keys);
  const int64_t group = sz.heads_q / sz.heads_kv;
  double kr[kChunks], vr[kChunks], dkr[kChunks] = {}, dvr[kChunks] = {};
  load_row(kr, k + kv * sz.dim_k, sz.dim_k, lane);
  load_row(vr, v + kv * sz.dim_v, sz.dim_v, lane);
  rows.each(b, s, g, sz, [&](int64_t t, int64_t hh) {
    const int64_t h = g * group + hh, qrow = (b * sz.seq + t) * sz.heads_q + h;
    const int64_t stat = (b * sz.heads_q + h) * sz.seq + t;
    const T* qr = q + qrow * sz.dim_k;
    const T* dor = dout + qrow * sz.dim_v;
    const double prob = exp(row_dot(kr, qr, sz.dim_k, lane) * scale - static_cast<double>(lse[stat]));
    const double ds = prob * (row_dot(vr, dor, sz.dim_v, lane) - delta[stat]);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t d = lane + 32 * c;
      if (d < sz.dim_v) dvr[c] += prob * read(dor + d);
      if (d < sz.dim_k) dkr[c] += ds * read(qr + d);
    }
  });
  store_row(dk + kv * sz.dim_k, dkr, scale, sz.dim_k, lane);
  store_row(dv + kv * sz.dim_v, dvr, 1.0, sz.dim_v, lane);
}

// Selection, one warp per (b, t, g): importance (eq. 9, 10) into a scratch row, then the forced blocks
// and repeated arg-max (larger importance, then lower index) for the free slots.
template <class T>
__global__ void select_kernel(const T* __restrict__ q, const T* __restrict__ kc,
                              const lse_t<T>* __restrict__ lse, int32_t* __restrict__ indices,
                              double* __restrict__ scratch, NsaSizes sz, NsaGeometry geo, double scale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= sz.batch * sz.seq * sz.heads_kv) return;
  const int64_t g = row % sz.heads_kv, t = (row / sz.heads_kv) % sz.seq, b = row / (sz.heads_kv * sz.seq);
  const int64_t group = sz.heads_q / sz.heads_kv, n_slc = ceil_div(sz.seq, geo.slc_block);
  const int64_t vis_cmp = visible_cmp(t, sz.keys, geo.cmp_block, geo.cmp_stride);
  const int64_t vis_slc = t / geo.slc_block + 1;
  double* imp = scratch + row * n_slc;
  for (int64_t j = lane; j < vis_slc; j += 32) imp[j] = 0.0;
  __syncwarp();
  for (int64_t hh = 0; hh < group; ++hh) {
    const int64_t h = g * group + hh;
    const double row_lse = static_cast<double>(lse[(b * sz.heads_q + h) * sz.seq + t]);
    double qr[kChunks];
    load_row(qr, q + ((b * sz.seq + t) * sz.heads_q + h) * sz.dim_k, sz.dim_k, lane);
    for (int64_t i = 0; i < vis_cmp; ++i) {
      const double prob =
          exp(row_dot(qr, kc + ((b * sz.keys + i) * sz.heads_kv + g) * sz.dim_k, sz.dim_k, lane) * scale -
              row_lse);
      if (lane == 0) {
        for (int64_t j = i * geo.cmp_stride / geo.slc_block;
             j * geo.slc_block < i * geo.cmp_stride + geo.cmp_block && j < n_slc; ++j)
          imp[j] += prob * static_cast<double>(overlap_weight(i, j, geo));
      }
    }
  }
  __syncwarp();
  // Forced blocks are marked −2, chosen ones −1; importances are >= 0.
  for (int64_t j = lane; j < vis_slc; j += 32)
    if (is_forced(j, vis_slc, geo)) imp[j] = -2.0;
  __syncwarp();
  const int64_t free_slots = geo.top_n - forced_count(vis_slc, geo);
  for (int64_t pick = 0; pick < free_slots; ++pick) {
    double best = -1.0;
    int64_t best_j = -1;
    for (int64_t j = lane; j < vis_slc; j += 32) {
      const double x = imp[j];
      if (x >= 0 && x > best) best = x, best_j = j;  // a lane's j increase: keep the first of equals
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const double ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t oj = __shfl_xor_sync(0xffffffffu, best_j, o);
      if (oj >= 0 && (best_j < 0 || ob > best || (ob == best && oj < best_j))) best = ob, best_j = oj;
    }
    if (best_j < 0) break;
    if (lane == 0) imp[best_j] = -1.0;
    __syncwarp();
  }
  __syncwarp();
  int32_t* out = indices + row * geo.top_n;
  int64_t count = 0;
  for (int64_t base = 0; base < vis_slc; base += 32) {
    const int64_t j = base + lane;
    const bool chosen = j < vis_slc && imp[j] < 0;
    const unsigned mask = __ballot_sync(0xffffffffu, chosen);
    if (chosen) out[count + __popc(mask & ((1u << lane) - 1))] = static_cast<int32_t>(j);
    count += __popc(mask);
  }
  for (int64_t s = count + lane; s < geo.top_n; s += 32) out[s] = -1;
}

template <class D>
__global__ void delta_kernel(const void* dout, const void* out, D* __restrict__ delta, NsaSizes sz,
                             ScalarType dtype) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= sz.batch * sz.seq * sz.heads_q) return;
  double acc = 0;
  for (int64_t d = lane; d < sz.dim_v; d += 32) {
    const int64_t i = row * sz.dim_v + d;
    if (dtype == ScalarType::bf16) {
      acc += read(static_cast<const bf16_t*>(dout) + i) * read(static_cast<const bf16_t*>(out) + i);
    } else if (dtype == ScalarType::f32) {
      acc += read(static_cast<const float*>(dout) + i) * read(static_cast<const float*>(out) + i);
    } else {
      acc += read(static_cast<const double*>(dout) + i) * read(static_cast<const double*>(out) + i);
    }
  }
  acc = warp_sum(acc);
  const int64_t h = row % sz.heads_q, t = (row / sz.heads_q) % sz.seq, b = row / (sz.heads_q * sz.seq);
  if (lane == 0) delta[(b * sz.heads_q + h) * sz.seq + t] = static_cast<D>(acc);
}

unsigned warp_grid(int64_t warps) { return static_cast<unsigned>(ceil_div(warps, kWarpsPerBlock)); }
constexpr int kThreads = 32 * kWarpsPerBlock;

bool dims_ok(const NsaSizes& sz) { return sz.dim_k <= kSimtMaxDim && sz.dim_v <= kSimtMaxDim; }
constexpr const char* kDimsTooLarge = "NSA head dims above 256 are not supported on CUDA";

template <class F>
Status dispatch_index_type(ScalarType t, F&& f) {
  if (!dispatch_index(t, f)) return invalid("NSA block indices must be i32 or i64");
  return last_launch();
}

}  // namespace

Status simt_cmp_forward(const NsaCmpForwardParams& p, cudaStream_t stream) {
  if (!dims_ok(p.sz)) return invalid(kDimsTooLarge);
  const int64_t rows = p.sz.batch * p.sz.seq * p.sz.heads_q;
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    forward_kernel<T><<<warp_grid(rows), kThreads, 0, stream>>>(
        static_cast<const T*>(p.q), static_cast<const T*>(p.k), static_cast<const T*>(p.v),
        static_cast<T*>(p.out), static_cast<lse_t<T>*>(p.lse), p.sz, p.scale, CmpKeys{p.sz.keys, p.geo});
  });
  return ok ? last_launch() : invalid("nsa_cmp_forward: unsupported dtype");
}

Status simt_slc_forward(const NsaSlcForwardParams& p, cudaStream_t stream) {
  if (!dims_ok(p.sz)) return invalid(kDimsTooLarge);
  const int64_t rows = p.sz.batch * p.sz.seq * p.sz.heads_q;
  const int64_t n_slc = ceil_div(p.sz.seq, p.geo.slc_block);
  Status st{};
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    st = dispatch_index_type(p.index_type, [&]<class I>() {
      SlcKeys<I> keys{static_cast<const I*>(p.indices),
                      p.n_indices,
                      p.sz.seq,
                      p.sz.heads_kv,
                      n_slc,
                      p.geo.slc_block,
                      p.error_flag};
      forward_kernel<T><<<warp_grid(rows), kThreads, 0, stream>>>(
          static_cast<const T*>(p.q), static_cast<const T*>(p.k), static_cast<const T*>(p.v),
          static_cast<T*>(p.out), static_cast<lse_t<T>*>(p.lse), p.sz, p.scale, keys);
    });
  });
  return ok ? st : invalid("nsa_slc_forward: unsupported dtype");
}

size_t simt_select_scratch(const NsaSelectParams& p) {
  return static_cast<size_t>(p.sz.batch * p.sz.seq * p.sz.heads_kv * ceil_div(p.sz.seq, p.geo.slc_block)) *
         sizeof(double);
}

Status simt_select(const NsaSelectParams& p, void* scratch, cudaStream_t stream) {
  if (!dims_ok(p.sz)) return invalid(kDimsTooLarge);
  const int64_t rows = p.sz.batch * p.sz.seq * p.sz.heads_kv;
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    select_kernel<T><<<warp_grid(rows), kThreads, 0, stream>>>(
        static_cast<const T*>(p.q), static_cast<const T*>(p.kc), static_cast<const lse_t<T>*>(p.lse),
        p.indices, static_cast<double*>(scratch), p.sz, p.geo, p.scale);
  });
  return ok ? last_launch() : invalid("nsa_select: unsupported dtype");
}

template <class D>
Status row_delta(const NsaBackwardParams& p, D* delta, cudaStream_t stream) {
  const int64_t rows = p.sz.batch * p.sz.seq * p.sz.heads_q;
  delta_kernel<D><<<warp_grid(rows), kThreads, 0, stream>>>(p.dout, p.out, delta, p.sz, p.dtype);
  return last_launch();
}
template Status row_delta<float>(const NsaBackwardParams&, float*, cudaStream_t);
template Status row_delta<double>(const NsaBackwardParams&, double*, cudaStream_t);

namespace {

template <class KeysFor, class Rows>
Status simt_backward(const NsaBackwardParams& p, const double* delta, KeysFor&& keys_for, Rows rows,
                     cudaStream_t stream) {
  if (!dims_ok(p.sz)) return invalid(kDimsTooLarge);
  const int64_t q_rows = p.sz.batch * p.sz.seq * p.sz.heads_q;
  const int64_t kv_rows = p.sz.batch * p.sz.keys * p.sz.heads_kv;
  Status st{};
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    st = keys_for([&]<class Keys>(const Keys& keys) {
      dq_kernel<T><<<warp_grid(q_rows), kThreads, 0, stream>>>(
          static_cast<const T*>(p.dout), static_cast<const T*>(p.q), static_cast<const T*>(p.k),
          static_cast<const T*>(p.v), static_cast<const lse_t<T>*>(p.lse), delta, static_cast<T*>(p.dq), p.sz,
          p.scale, keys);
    });
    if (!st.ok()) return;
    if (kv_rows > 0)
      dkdv_kernel<T><<<warp_grid(kv_rows), kThreads, 0, stream>>>(
          static_cast<const T*>(p.dout), static_cast<const T*>(p.q), static_cast<const T*>(p.k),
          static_cast<const T*>(p.v), static_cast<const lse_t<T>*>(p.lse), delta, static_cast<T*>(p.dk),
          static_cast<T*>(p.dv), p.sz, p.scale, rows);
    st = last_launch();
  });
  return ok ? st : invalid("nsa backward: unsupported dtype");
}

}  // namespace

Status simt_cmp_backward(const NsaBackwardParams& p, const double* delta, cudaStream_t stream) {
  auto keys_for = [&](auto&& launch) {
    launch(CmpKeys{p.sz.keys, p.geo});
    return last_launch();
  };
  return simt_backward(p, delta, keys_for, CmpRows{p.geo}, stream);
}

Status simt_slc_backward(const NsaBackwardParams& p, const double* delta, const int* row_start,
                         const uint64_t* sorted, cudaStream_t stream) {
  const int64_t n_slc = ceil_div(p.sz.seq, p.geo.slc_block);
  auto keys_for = [&](auto&& launch) {
    return dispatch_index_type(p.index_type, [&]<class I>() {
      launch(SlcKeys<I>{static_cast<const I*>(p.indices), p.n_indices, p.sz.seq, p.sz.heads_kv, n_slc,
                        p.geo.slc_block, p.error_flag});
    });
  };
  return simt_backward(p, delta, keys_for, SlcRows{p.geo, row_start, sorted}, stream);
}

}  // namespace nsa::kernels::nsa_impl
