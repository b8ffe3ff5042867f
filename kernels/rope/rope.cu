#include "kernels/common/device_utils.cuh"
#include "kernels/rope/rope.h"

namespace nsa::kernels {
namespace {

constexpr int kThreads = 128;

// One thread per (token, pair): computes the angle once and applies it to every head; dims past rot_dim
// are copied by the threads of the first pairs.
template <class T, class P>
__global__ void rope_kernel(const RopeParams p) {
  using A = acc_t<T>;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const P* positions = static_cast<const P*>(p.positions);
  const int64_t half = p.rot_dim / 2, hd = p.head_dim;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < p.tokens * half;
       e += stride) {
    const int64_t t = e / half, i = e % half;
    double s, c;
    sincos(static_cast<double>(positions[t]) * p.inv_freq[i], &s, &c);
    const A cs = static_cast<A>(c), sn = static_cast<A>(p.inverse ? -s : s);
    for (int64_t h = 0; h < p.heads; ++h) {
      const int64_t base = (t * p.heads + h) * hd;
      const A a = to_acc(x[base + i]), b = to_acc(x[base + i + half]);
      out[base + i] = from_acc<T>(a * cs - b * sn);
      out[base + i + half] = from_acc<T>(b * cs + a * sn);
      for (int64_t j = p.rot_dim + i; j < hd; j += half) out[base + j] = x[base + j];
    }
  }
}

}  // namespace

Status launch_rope(const RopeParams& p, cudaStream_t stream) {
  if (p.tokens == 0) return {};
  const int64_t half = p.rot_dim / 2;
  if (half < 1 || half > kMaxRopeHalf || p.rot_dim > p.head_dim) return invalid("rope: bad rot_dim");
  bool ok = false;
  dispatch_float(p.dtype, [&]<class T>() {
    ok = dispatch_index(p.pos_type, [&]<class P>() {
      rope_kernel<T, P><<<grid_for(p.tokens * half, kThreads), kThreads, 0, stream>>>(p);
    });
  });
  return ok ? last_launch() : invalid("rope: unsupported dtypes");
}

}  // namespace nsa::kernels
