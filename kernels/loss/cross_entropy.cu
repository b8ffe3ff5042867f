#include "kernels/loss/cross_entropy.h"
#include "kernels/softmax/online_softmax.cuh"
#include "kernels/softmax/softmax.h"

namespace nsa::kernels {
namespace {

constexpr int kFinalThreads = 1024;

template <class I>
__device__ __forceinline__ bool counted(I t, int64_t vocab, int64_t ignore) {
  return static_cast<int64_t>(t) != ignore && t >= 0 && static_cast<int64_t>(t) < vocab;
}

// One block per row: lse and the row's loss (0 when the row does not count).
template <class T, class L, class I>
__global__ void row_loss_kernel(const T* logits, const I* targets, L* lse_out, L* row_loss, int64_t vocab,
                                int64_t ignore, unsigned* error_flag) {
  using A = acc_t<T>;
  const T* x = logits + blockIdx.x * vocab;
  MaxSum<A> ms{A(-INFINITY), A(0)};
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) ms.add(to_acc(x[c]));
  const A lse = block_merge(ms).lse();
  if (threadIdx.x == 0) {
    const I t = targets[blockIdx.x];
    lse_out[blockIdx.x] = static_cast<L>(lse);
    const bool ok = counted(t, vocab, ignore);
    if (!ok && static_cast<int64_t>(t) != ignore) atomicOr(error_flag, kTargetOutOfRange);
    row_loss[blockIdx.x] = ok ? static_cast<L>(lse - to_acc(x[t])) : L(0);
  }
}

// One block: mean of the row losses over the counted rows (fixed order: deterministic).
template <class L, class I>
__global__ void finalize_kernel(const L* row_loss, const I* targets, int64_t rows, int64_t vocab,
                                int64_t ignore, L* loss, L* count) {
  L total = 0, n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    total += row_loss[r];
    n += counted(targets[r], vocab, ignore) ? L(1) : L(0);
  }
  total = block_sum(total);
  n = block_sum(n);
  if (threadIdx.x == 0) {
    *count = n;
    *loss = n > L(0) ? total / n : L(0);
  }
}

template <class T, class L, class I>
__global__ void backward_kernel(T* grad, const L* grad_loss, const T* logits, const I* targets, const L* lse,
                                const L* count, int64_t vocab, int64_t ignore) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  const I t = targets[row];
  const bool ok = counted(t, vocab, ignore);
  const A scale = static_cast<A>(*grad_loss / max(*count, L(1)));
  const A l = static_cast<A>(lse[row]);
  const T* x = logits + row * vocab;
  T* g = grad + row * vocab;
  for (int64_t c = threadIdx.x; c < vocab; c += blockDim.x) {
    const A p = exp(to_acc(x[c]) - l);
    g[c] = from_acc<T>(ok ? scale * (p - (c == static_cast<int64_t>(t) ? A(1) : A(0))) : A(0));
  }
}

template <class F>
bool dispatch_loss_type(ScalarType t, F&& f) {
  if (t == ScalarType::f32) {
    f.template operator()<float>();
    return true;
  }
  if (t == ScalarType::f64) {
    f.template operator()<double>();
    return true;
  }
  return false;
}

}  // namespace

Status launch_cross_entropy(const CrossEntropyParams& p, cudaStream_t stream) {
  if (p.rows > 0x7fffffff) return invalid("cross_entropy: too many rows");
  bool ok = false;
  dispatch_float(p.dtype, [&]<class T>() {
    dispatch_loss_type(p.loss_type, [&]<class L>() {
      ok = dispatch_index(p.target_type, [&]<class I>() {
        L* row_loss = static_cast<L*>(p.workspace);
        const I* targets = static_cast<const I*>(p.targets);
        if (p.rows > 0)
          row_loss_kernel<T, L, I><<<static_cast<unsigned>(p.rows), row_threads(p.vocab), 0, stream>>>(
              static_cast<const T*>(p.logits), targets, static_cast<L*>(p.lse), row_loss, p.vocab,
              p.ignore_index, p.error_flag);
        finalize_kernel<L, I><<<1, kFinalThreads, 0, stream>>>(row_loss, targets, p.rows, p.vocab,
                                                               p.ignore_index, static_cast<L*>(p.loss),
                                                               static_cast<L*>(p.count));
      });
    });
  });
  return ok ? last_launch() : invalid("cross_entropy: unsupported dtypes");
}

Status launch_cross_entropy_backward(const CrossEntropyBackwardParams& p, cudaStream_t stream) {
  if (p.rows == 0) return {};
  if (p.rows > 0x7fffffff) return invalid("cross_entropy_backward: too many rows");
  bool ok = false;
  dispatch_float(p.dtype, [&]<class T>() {
    dispatch_loss_type(p.loss_type, [&]<class L>() {
      ok = dispatch_index(p.target_type, [&]<class I>() {
        backward_kernel<T, L, I><<<static_cast<unsigned>(p.rows), row_threads(p.vocab), 0, stream>>>(
            static_cast<T*>(p.grad_logits), static_cast<const L*>(p.grad_loss),
            static_cast<const T*>(p.logits), static_cast<const I*>(p.targets), static_cast<const L*>(p.lse),
            static_cast<const L*>(p.count), p.vocab, p.ignore_index);
      });
    });
  });
  return ok ? last_launch() : invalid("cross_entropy_backward: unsupported dtypes");
}

}  // namespace nsa::kernels
