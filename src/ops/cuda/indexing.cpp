// CUDA bindings: top-k and the index family (embedding is index_select on dim 0).
#include "kernels/indexing/indexing.h"

#include "kernels/topk/topk.h"
#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {
namespace {

kernels::IndexParams index_params(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer,
                                  int64_t n, int64_t m, int64_t inner) {
  return {scalar(out.dtype()),
          scalar(index.dtype()),
          out.data_ptr(),
          src.data_ptr(),
          index.data_ptr(),
          outer,
          n,
          m,
          inner,
          error_flag()};
}

// Runs an atomic add kernel; bf16 destinations accumulate in an f32 copy (bf16 atomics would round at
// every addition).
template <class Launch>
void accumulate(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                int64_t m, int64_t inner, Launch launch, const char* op) {
  if (dst.dtype() != DType::bf16) {
    check(launch(index_params(dst, src, index, outer, n, m, inner), stream()), op);
    return;
  }
  Tensor acc = Tensor::empty(dst.shape(), DType::f32, dst.device());
  Tensor src32 = Tensor::empty(src.shape(), DType::f32, src.device());
  CudaBackend& self = static_cast<CudaBackend&>(backend_for(dst.device()));
  self.copy(acc, dst);
  self.copy(src32, src);
  check(launch(index_params(acc, src32, index, outer, n, m, inner), stream()), op);
  self.copy(dst, acc);
}

}  // namespace

void CudaBackend::topk(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k) {
  const int64_t n = in.size(-1);
  kernels::TopkParams p{
      scalar(in.dtype()), in.data_ptr(), values.data_ptr(), indices.data<int64_t>(), in.numel() / n, n, k};
  check(kernels::launch_topk(p, stream()), "topk");
}

void CudaBackend::index_select(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer,
                               int64_t n, int64_t inner) {
  check(kernels::launch_index_select(index_params(out, src, index, outer, n, index.numel(), inner), stream()),
        "index_select");
}

void CudaBackend::index_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer,
                            int64_t n, int64_t inner) {
  accumulate(dst, index, src, outer, n, index.numel(), inner, kernels::launch_index_add, "index_add");
}

void CudaBackend::gather(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer, int64_t n,
                         int64_t inner) {
  const int64_t m = index.numel() / (outer * inner);
  check(kernels::launch_gather(index_params(out, src, index, outer, n, m, inner), stream()), "gather");
}

void CudaBackend::scatter_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer,
                              int64_t n, int64_t inner) {
  accumulate(dst, index, src, outer, n, index.numel() / (outer * inner), inner, kernels::launch_scatter_add,
             "scatter_add");
}

}  // namespace nsa::cuda_binding

namespace nsa::cuda_binding {

void CudaBackend::shard_index(const Tensor& local, const Tensor& mask, const Tensor& ids, int64_t begin,
                              int64_t count) {
  const kernels::ShardIndexParams p{scalar(ids.dtype()), scalar(mask.dtype()), ids.data_ptr(),
                                    local.data<int64_t>(), mask.data_ptr(), ids.numel(), begin, count};
  check(kernels::launch_shard_index(p, stream()), "shard_index");
}

}  // namespace nsa::cuda_binding
