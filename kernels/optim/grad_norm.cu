// Global L2 norm of many f32 tensors (see grad_norm.h). Pass 1: each block sums the squares of its chunks
// (in double) into its slot of the partials; pass 2: one block adds all partials and writes the norm.
#include <vector>

#include "kernels/optim/grad_norm.h"
#include "kernels/optim/multi_tensor.cuh"

namespace nsa::kernels {
namespace {

using multi_tensor::kChunkElements;
using multi_tensor::kThreads;

struct NormBatch {
  int count;
  int64_t chunk_begin[kGradNormTensorsPerLaunch + 1];
  int64_t numel[kGradNormTensorsPerLaunch];
  const float* data[kGradNormTensorsPerLaunch];
  bool vectorized[kGradNormTensorsPerLaunch];
};
static_assert(sizeof(NormBatch) <= 3800, "NormBatch too large for the kernel argument space");

__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const __grid_constant__ NormBatch batch, double* partials) {
  double acc = 0;
  const int64_t chunks = batch.chunk_begin[batch.count];
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const int k = multi_tensor::tensor_of_chunk(batch.chunk_begin, batch.count, c);
    const int64_t begin = (c - batch.chunk_begin[k]) * kChunkElements;
    const int64_t end = min(begin + kChunkElements, batch.numel[k]);
    const float* x = batch.data[k];
    int64_t scalar_begin = begin;
    if (batch.vectorized[k]) {
      const int64_t vector_end = begin + (end - begin) / 4 * 4;
      for (int64_t i = begin + 4 * static_cast<int64_t>(threadIdx.x); i < vector_end; i += 4 * kThreads) {
        const float4 q = *reinterpret_cast<const float4*>(x + i);
        acc += static_cast<double>(q.x) * q.x + static_cast<double>(q.y) * q.y +
               static_cast<double>(q.z) * q.z + static_cast<double>(q.w) * q.w;
      }
      scalar_begin = vector_end;
    }
    for (int64_t i = scalar_begin + threadIdx.x; i < end; i += kThreads)
      acc += static_cast<double>(x[i]) * x[i];
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(kThreads)
    finish_norm_kernel(const double* partials, int64_t n, float* out, bool squared) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = static_cast<float>(squared ? acc : sqrt(acc));
}

// The launches of pass 1: which tensors, how many blocks, where their partials go.
struct NormPlan {
  std::vector<NormBatch> batches;
  std::vector<unsigned> grids;
  int64_t partials = 0;
};

bool build_plan(const GradNormParams& p, NormPlan* plan) {
  int64_t next = 0;
  while (next < p.count) {
    NormBatch batch{};
    int64_t chunks = 0;
    while (next < p.count && batch.count < kGradNormTensorsPerLaunch) {
      const int64_t numel = p.numels[next];
      const float* data = p.tensors[next++];
      if (numel < 0 || (numel > 0 && !data)) return false;
      if (numel == 0) continue;
      const int k = batch.count++;
      batch.chunk_begin[k] = chunks;
      chunks += multi_tensor::chunks_of(numel);
      batch.numel[k] = numel;
      batch.data[k] = data;
      batch.vectorized[k] = multi_tensor::aligned16(data);
    }
    if (batch.count == 0) break;
    batch.chunk_begin[batch.count] = chunks;
    const unsigned grid = multi_tensor::grid_for_chunks(chunks);
    plan->batches.push_back(batch);
    plan->grids.push_back(grid);
    plan->partials += grid;
  }
  return true;
}

}  // namespace

size_t grad_norm_workspace_bytes(const GradNormParams& p) {
  NormPlan plan;
  if (!build_plan(p, &plan)) return 0;
  return static_cast<size_t>(plan.partials) * sizeof(double);
}

Status launch_grad_norm(const GradNormParams& p, cudaStream_t stream) {
  if (!p.out) return invalid("grad_norm: null output");
  if (p.count < 0 || (p.count > 0 && (!p.tensors || !p.numels))) return invalid("grad_norm: bad tensor list");
  NormPlan plan;
  if (!build_plan(p, &plan)) return invalid("grad_norm: null tensor pointer or negative numel");
  if (plan.partials > 0 && !p.workspace) return invalid("grad_norm: workspace missing");
  double* partials = static_cast<double*>(p.workspace);
  int64_t offset = 0;
  for (size_t b = 0; b < plan.batches.size(); ++b) {
    sum_squares_kernel<<<plan.grids[b], kThreads, 0, stream>>>(plan.batches[b], partials + offset);
    const Status st = last_launch();
    if (!st.ok()) return st;
    offset += plan.grids[b];
  }
  finish_norm_kernel<<<1, kThreads, 0, stream>>>(partials, plan.partials, p.out, p.squared);
  return last_launch();
}

}  // namespace nsa::kernels
