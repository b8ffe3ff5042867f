// Causal (optionally windowed) row softmax of attention scores, forward and backward, in place.
// Invariants: every row has at least one visible column (its own position); entries outside the visible
// range are always written (0), so a buffer reused from the allocator never leaks stale values into the
// GEMMs that read whole rows.
#include "kernels/attention/masked_softmax.h"
#include "kernels/softmax/online_softmax.cuh"
#include "kernels/softmax/softmax.h"

namespace nsa::kernels {
namespace {

// The visible columns [lo, hi] of row `row`.
struct VisibleRange {
  int64_t lo, hi;
  __device__ __forceinline__ VisibleRange(int64_t row, int64_t seq, int64_t window) {
    hi = row % seq;
    lo = (window > 0 && hi - window + 1 > 0) ? hi - window + 1 : 0;
  }
  __device__ __forceinline__ bool contains(int64_t c) const { return c >= lo && c <= hi; }
};

template <class T>
__global__ void masked_softmax_kernel(T* scores, acc_t<T>* lse, int64_t seq, int64_t window, acc_t<T> scale) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  T* x = scores + row * seq;
  const VisibleRange vis(row, seq, window);
  MaxSum<A> ms{A(-INFINITY), A(0)};
  for (int64_t c = vis.lo + threadIdx.x; c <= vis.hi; c += blockDim.x) ms.add(scale * to_acc(x[c]));
  const A row_lse = block_merge(ms).lse();
  for (int64_t c = threadIdx.x; c < seq; c += blockDim.x)
    x[c] = from_acc<T>(vis.contains(c) ? exp(scale * to_acc(x[c]) - row_lse) : A(0));
  if (threadIdx.x == 0) lse[row] = row_lse;
}

template <class T>
__global__ void masked_softmax_backward_kernel(T* scores, T* grad, const acc_t<T>* lse, int64_t seq,
                                               int64_t window, acc_t<T> scale) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  T* s = scores + row * seq;
  T* g = grad + row * seq;
  const VisibleRange vis(row, seq, window);
  const A row_lse = lse[row];
  // D = Σ P∘dP over the visible columns (equals dO·O); P is rebuilt in A, not read back rounded.
  A dot = 0;
  for (int64_t c = vis.lo + threadIdx.x; c <= vis.hi; c += blockDim.x)
    dot += exp(scale * to_acc(s[c]) - row_lse) * to_acc(g[c]);
  dot = block_sum(dot);
  for (int64_t c = threadIdx.x; c < seq; c += blockDim.x) {
    A prob = 0, dscore = 0;
    if (vis.contains(c)) {
      prob = exp(scale * to_acc(s[c]) - row_lse);
      dscore = scale * prob * (to_acc(g[c]) - dot);
    }
    s[c] = from_acc<T>(prob);
    g[c] = from_acc<T>(dscore);
  }
}

// rows must fit the grid's x dimension.
const char* check_rows(int64_t rows) { return rows > 0x7fffffff ? "masked_softmax: too many rows" : nullptr; }

}  // namespace

Status launch_masked_softmax(const MaskedSoftmaxParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.seq == 0) return {};
  if (const char* err = check_rows(p.rows)) return invalid(err);
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    using A = acc_t<T>;
    masked_softmax_kernel<T><<<static_cast<unsigned>(p.rows), row_threads(p.seq), 0, stream>>>(
        static_cast<T*>(p.scores), static_cast<A*>(p.lse), p.seq, p.window, static_cast<A>(p.scale));
  });
  return ok ? last_launch() : invalid("masked_softmax: expected a floating dtype");
}

Status launch_masked_softmax_backward(const MaskedSoftmaxBackwardParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.seq == 0) return {};
  if (const char* err = check_rows(p.rows)) return invalid(err);
  const bool ok = dispatch_float(p.dtype, [&]<class T>() {
    using A = acc_t<T>;
    masked_softmax_backward_kernel<T><<<static_cast<unsigned>(p.rows), row_threads(p.seq), 0, stream>>>(
        static_cast<T*>(p.scores), static_cast<T*>(p.grad), static_cast<const A*>(p.lse), p.seq, p.window,
        static_cast<A>(p.scale));
  });
  return ok ? last_launch() : invalid("masked_softmax_backward: expected a floating dtype");
}

}  // namespace nsa::kernels
