// AdamW multi-tensor update (see adamw.h for the formulas). One thread updates 4 consecutive elements
// with 16-byte loads when all four arrays of the tensor are 16-byte aligned, one element otherwise.
#include "kernels/optim/adamw.h"
#include "kernels/optim/multi_tensor.cuh"

namespace nsa::kernels {
namespace {

using multi_tensor::kChunkElements;
using multi_tensor::kThreads;

// The tensors of one launch, passed by value in the kernel arguments.
struct AdamWBatch {
  int count;
  int64_t chunk_begin[kAdamWTensorsPerLaunch + 1];
  int64_t numel[kAdamWTensorsPerLaunch];
  float* param[kAdamWTensorsPerLaunch];
  const float* grad[kAdamWTensorsPerLaunch];
  float* exp_avg[kAdamWTensorsPerLaunch];
  float* exp_avg_sq[kAdamWTensorsPerLaunch];
  bool decay[kAdamWTensorsPerLaunch];
  bool vectorized[kAdamWTensorsPerLaunch];
};
// Kernel arguments are limited to 4 KiB on every toolkit we build with.
static_assert(sizeof(AdamWBatch) <= 3800, "AdamWBatch too large for the kernel argument space");

// The hyperparameters rounded to f32 once on the host (1 − β computed in double first).
struct AdamWScalars {
  const float* grad_scale;
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, step_size, bias_correction2_sqrt, decay_factor;
};

__device__ __forceinline__ void update(float& p, float g, float& m, float& v, float scale, float decay,
                                       const AdamWScalars& s) {
  g *= scale;
  m = s.beta1 * m + s.one_minus_beta1 * g;
  v = s.beta2 * v + s.one_minus_beta2 * (g * g);
  const float denom = sqrtf(v) / s.bias_correction2_sqrt + s.eps;
  p = p * decay - s.step_size * (m / denom);
}

__global__ void __launch_bounds__(kThreads)
    adamw_kernel(const __grid_constant__ AdamWBatch batch, const AdamWScalars s) {
  const float scale = s.grad_scale ? *s.grad_scale : 1.0f;
  const int64_t chunks = batch.chunk_begin[batch.count];
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const int k = multi_tensor::tensor_of_chunk(batch.chunk_begin, batch.count, c);
    const int64_t begin = (c - batch.chunk_begin[k]) * kChunkElements;
    const int64_t end = min(begin + kChunkElements, batch.numel[k]);
    float* param = batch.param[k];
    const float* grad = batch.grad[k];
    float* m = batch.exp_avg[k];
    float* v = batch.exp_avg_sq[k];
    const float decay = batch.decay[k] ? s.decay_factor : 1.0f;
    int64_t scalar_begin = begin;
    if (batch.vectorized[k]) {
      const int64_t vector_end = begin + (end - begin) / 4 * 4;
      for (int64_t i = begin + 4 * static_cast<int64_t>(threadIdx.x); i < vector_end; i += 4 * kThreads) {
        float4 p4 = *reinterpret_cast<const float4*>(param + i);
        const float4 g4 = *reinterpret_cast<const float4*>(grad + i);
        float4 m4 = *reinterpret_cast<const float4*>(m + i);
        float4 v4 = *reinterpret_cast<const float4*>(v + i);
        update(p4.x, g4.x, m4.x, v4.x, scale, decay, s);
        update(p4.y, g4.y, m4.y, v4.y, scale, decay, s);
        update(p4.z, g4.z, m4.z, v4.z, scale, decay, s);
        update(p4.w, g4.w, m4.w, v4.w, scale, decay, s);
        *reinterpret_cast<float4*>(param + i) = p4;
        *reinterpret_cast<float4*>(m + i) = m4;
        *reinterpret_cast<float4*>(v + i) = v4;
      }
      scalar_begin = vector_end;
    }
    for (int64_t i = scalar_begin + threadIdx.x; i < end; i += kThreads) {
      float p = param[i], mi = m[i], vi = v[i];
      update(p, grad[i], mi, vi, scale, decay, s);
      param[i] = p;
      m[i] = mi;
      v[i] = vi;
    }
  }
}

}  // namespace

Status launch_adamw(const AdamWParams& p, cudaStream_t stream) {
  if (p.count < 0 || (p.count > 0 && !p.tensors)) return invalid("adamw: bad tensor list");
  if (!(p.bias_correction2_sqrt > 0)) return invalid("adamw: bias_correction2_sqrt must be positive");
  const AdamWScalars s{p.grad_scale,
                       static_cast<float>(p.beta1),
                       static_cast<float>(1.0 - p.beta1),
                       static_cast<float>(p.beta2),
                       static_cast<float>(1.0 - p.beta2),
                       static_cast<float>(p.eps),
                       static_cast<float>(p.step_size),
                       static_cast<float>(p.bias_correction2_sqrt),
                       static_cast<float>(p.decay_factor)};
  int64_t next = 0;
  while (next < p.count) {
    AdamWBatch batch{};
    int64_t chunks = 0;
    while (next < p.count && batch.count < kAdamWTensorsPerLaunch) {
      const AdamWTensor& t = p.tensors[next++];
      if (t.numel < 0) return invalid("adamw: negative numel");
      if (t.numel == 0) continue;
      if (!t.param || !t.grad || !t.exp_avg || !t.exp_avg_sq) return invalid("adamw: null tensor pointer");
      const int k = batch.count++;
      batch.chunk_begin[k] = chunks;
      chunks += multi_tensor::chunks_of(t.numel);
      batch.numel[k] = t.numel;
      batch.param[k] = t.param;
      batch.grad[k] = t.grad;
      batch.exp_avg[k] = t.exp_avg;
      batch.exp_avg_sq[k] = t.exp_avg_sq;
      batch.decay[k] = t.decay;
      batch.vectorized[k] = multi_tensor::aligned16(t.param) && multi_tensor::aligned16(t.grad) &&
                            multi_tensor::aligned16(t.exp_avg) && multi_tensor::aligned16(t.exp_avg_sq);
    }
    if (batch.count == 0) break;
    batch.chunk_begin[batch.count] = chunks;
    adamw_kernel<<<multi_tensor::grid_for_chunks(chunks), kThreads, 0, stream>>>(batch, s);
    const Status st = last_launch();
    if (!st.ok()) return st;
  }
  return {};
}

}  // namespace nsa::kernels
