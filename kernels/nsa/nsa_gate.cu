// Kernels of nsa_gate.h: the fused gate of Native Sparse Attention, forward and backward.
//
// A row is handled by a group of 2^k adjacent lanes of one warp: the fewest that cover the row in 16-byte
// packs, at most 32 (Dv = 128 bf16: 16 lanes × 8 elements, two rows per warp), each lane streaming its
// packs of the branch rows. A pure streaming kernel: with one row group per thread group and 256-thread
// blocks, a resident SM has ~48 bytes (forward) or ~64 bytes (backward) of loads in flight per thread,
// far above what saturates HBM, so no loop over rows is needed. The backward's three row sums are
// reduced inside the group with xor shuffles (groups are aligned, so rows never mix): a fixed order.
// Unaligned pointers or a dim that is not a multiple of the pack fall back to scalar accesses.
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/common/device_utils.cuh"
#include "kernels/nsa/nsa_gate.h"

namespace nsa::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxLanesLog2 = 5;  // a row group never spans two warps

// V consecutive elements, aligned to their size: one 16-byte access when V·sizeof(T) = 16.
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <class T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, V>*>(p);
}

template <class T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& r) {
  *reinterpret_cast<Pack<T, V>*>(p) = r;
}

template <class A>
__device__ __forceinline__ A sigmoid(A x) {
  if constexpr (std::is_same_v<A, float>) {
    return 1.0f / (1.0f + expf(-x));
  } else {
    return 1.0 / (1.0 + exp(-x));
  }
}

// The row and the lane within the row's group of this thread.
struct RowLane {
  int64_t row;
  int lane;
};
__device__ __forceinline__ RowLane row_lane(int lanes_log2) {
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  return {thread >> lanes_log2, static_cast<int>(thread & ((int64_t{1} << lanes_log2) - 1))};
}

template <class T, int V>
__global__ void __launch_bounds__(kThreads) nsa_gate_forward_kernel(NsaGateForwardParams p, int lanes_log2) {
  using A = acc_t<T>;
  const auto [row, lane] = row_lane(lanes_log2);
  if (row >= p.rows) return;
  const T* g = static_cast<const T*>(p.logits) + row * 3;
  const A s_cmp = sigmoid(to_acc(g[0])), s_slc = sigmoid(to_acc(g[1])), s_win = sigmoid(to_acc(g[2]));
  const int64_t base = row * p.dim;
  const T* oc = static_cast<const T*>(p.o_cmp) + base;
  const T* os = static_cast<const T*>(p.o_slc) + base;
  const T* ow = static_cast<const T*>(p.o_win) + base;
  T* out = static_cast<T*>(p.out) + base;
  const int64_t step = int64_t{V} << lanes_log2;
  for (int64_t c = static_cast<int64_t>(lane) * V; c < p.dim; c += step) {
    const Pack<T, V> a = load_pack<T, V>(oc + c), b = load_pack<T, V>(os + c), w = load_pack<T, V>(ow + c);
    Pack<T, V> r;
#pragma unroll
    for (int e = 0; e < V; ++e)
      r.v[e] = from_acc<T>(s_cmp * to_acc(a.v[e]) + s_slc * to_acc(b.v[e]) + s_win * to_acc(w.v[e]));
    store_pack<T, V>(out + c, r);
  }
}

template <class T, int V>
__global__ void __launch_bounds__(kThreads)
    nsa_gate_backward_kernel(NsaGateBackwardParams p, int lanes_log2) {
  using A = acc_t<T>;
  const auto [row, lane] = row_lane(lanes_log2);
  const bool valid = row < p.rows;  // the others still take part in the shuffles below
  A s[3] = {0, 0, 0}, ds[3] = {0, 0, 0}, dot[3] = {0, 0, 0};
  if (valid) {
    const T* g = static_cast<const T*>(p.logits) + row * 3;
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      const A x = to_acc(g[k]);
      s[k] = sigmoid(x);
      ds[k] = s[k] * sigmoid(-x);  // σ' = σ(x)·σ(−x): no cancellation in 1 − σ for large x
    }
    const int64_t base = row * p.dim;
    const T* dout = static_cast<const T*>(p.dout) + base;
    const T* o[3] = {static_cast<const T*>(p.o_cmp) + base, static_cast<const T*>(p.o_slc) + base,
                     static_cast<const T*>(p.o_win) + base};
    T* d[3] = {static_cast<T*>(p.d_cmp) + base, static_cast<T*>(p.d_slc) + base,
               static_cast<T*>(p.d_win) + base};
    const int64_t step = int64_t{V} << lanes_log2;
    for (int64_t c = static_cast<int64_t>(lane) * V; c < p.dim; c += step) {
      const Pack<T, V> go = load_pack<T, V>(dout + c);
      Pack<T, V> branch[3];
#pragma unroll
      for (int k = 0; k < 3; ++k) branch[k] = load_pack<T, V>(o[k] + c);
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        Pack<T, V> r;
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const A gv = to_acc(go.v[e]);
          dot[k] += gv * to_acc(branch[k].v[e]);
          r.v[e] = from_acc<T>(s[k] * gv);
        }
        store_pack<T, V>(d[k] + c, r);
      }
    }
  }
  for (int offset = (1 << lanes_log2) >> 1; offset > 0; offset >>= 1)
#pragma unroll
    for (int k = 0; k < 3; ++k) dot[k] += __shfl_xor_sync(0xffffffffu, dot[k], offset);
  if (valid && lane == 0) {
    T* dg = static_cast<T*>(p.d_logits) + row * 3;
#pragma unroll
    for (int k = 0; k < 3; ++k) dg[k] = from_acc<T>(ds[k] * dot[k]);
    if constexpr (sizeof(A) == sizeof(float)) {
      if (p.deltas) {
        const int64_t plane = p.rows, h = row % p.heads, bt = row / p.heads;
        const int64_t at = (bt / p.seq * p.heads + h) * p.seq + bt % p.seq;  // [B, H, T]
#pragma unroll
        for (int k = 0; k < 3; ++k) p.deltas[k * plane + at] = s[k] * dot[k];
      }
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// How a launch covers the rows: 16-byte packs or scalars, lanes per row (log2), blocks.
struct Plan {
  bool vector = false;
  int lanes_log2 = 0;
  unsigned blocks = 0;
};

template <class T>
bool plan_for(int64_t rows, int64_t dim, std::initializer_list<const void*> row_data, Plan& plan) {
  constexpr int V = Vec16<T>::kSize;
  plan.vector = dim % V == 0;
  for (const void* ptr : row_data) plan.vector = plan.vector && aligned16(ptr);
  const int64_t packs = plan.vector ? dim / V : dim;
  plan.lanes_log2 = 0;
  while (plan.lanes_log2 < kMaxLanesLog2 && (int64_t{1} << plan.lanes_log2) < packs) ++plan.lanes_log2;
  if (rows > (int64_t{1} << 40)) return false;
  const int64_t blocks = ((rows << plan.lanes_log2) + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) return false;
  plan.blocks = static_cast<unsigned>(blocks);
  return true;
}

}  // namespace

Status launch_nsa_gate_forward(const NsaGateForwardParams& p, cudaStream_t stream) {
  if (p.rows < 0 || p.dim < 0) return invalid("nsa_gate_forward: negative size");
  if (p.rows == 0 || p.dim == 0) return {};
  bool fits = true;
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    Plan plan;
    fits = plan_for<T>(p.rows, p.dim, {p.o_cmp, p.o_slc, p.o_win, p.out}, plan);
    if (!fits) return;
    if (plan.vector) {
      nsa_gate_forward_kernel<T, Vec16<T>::kSize><<<plan.blocks, kThreads, 0, stream>>>(p, plan.lanes_log2);
    } else {
      nsa_gate_forward_kernel<T, 1><<<plan.blocks, kThreads, 0, stream>>>(p, plan.lanes_log2);
    }
  });
  if (!ok) return invalid("nsa_gate_forward: expected a floating dtype");
  if (!fits) return invalid("nsa_gate_forward: too many rows for one launch");
  return last_launch();
}

Status launch_nsa_gate_backward(const NsaGateBackwardParams& p, cudaStream_t stream) {
  if (p.rows < 0 || p.dim < 0) return invalid("nsa_gate_backward: negative size");
  if (p.rows == 0) return {};  // dim = 0 still writes d_logits (zeros)
  if (p.deltas &&
      (p.dtype == ScalarType::f64 || p.seq <= 0 || p.heads <= 0 || p.rows % (p.seq * p.heads) != 0))
    return invalid("nsa_gate_backward: deltas need bf16 or f32 rows of [B, T, H] with T and H given");
  bool fits = true;
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    Plan plan;
    fits = plan_for<T>(p.rows, p.dim, {p.dout, p.o_cmp, p.o_slc, p.o_win, p.d_cmp, p.d_slc, p.d_win}, plan);
    if (!fits) return;
    if (plan.vector) {
      nsa_gate_backward_kernel<T, Vec16<T>::kSize><<<plan.blocks, kThreads, 0, stream>>>(p, plan.lanes_log2);
    } else {
      nsa_gate_backward_kernel<T, 1><<<plan.blocks, kThreads, 0, stream>>>(p, plan.lanes_log2);
    }
  });
  if (!ok) return invalid("nsa_gate_backward: expected a floating dtype");
  if (!fits) return invalid("nsa_gate_backward: too many rows for one launch");
  return last_launch();
}

}  // namespace nsa::kernels
