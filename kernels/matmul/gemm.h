// Matrix products through cuBLASLt: bf16 inputs with f32 accumulation (CUBLAS_COMPUTE_32F), true f32
// (no TF32: results match the CPU to ~1e-6) and f64. Row-major semantics as in src/ops/backend.h
// (GemmArgs); the launcher maps them onto cuBLAS's column-major API by computing Cᵀ = op(B)ᵀ·op(A)ᵀ.
//
// Descriptors and the heuristic's algorithm are cached per shape/layout/alignment, so a repeated step pays
// the heuristic query once. The workspace is passed in (the binding owns one per device).
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct GemmParams {
  ScalarType dtype;
  bool trans_a, trans_b;
  int64_t batch, m, n, k;
  int64_t lda, ldb, ldc;
  int64_t stride_a, stride_b, stride_c;
  const void* a;
  const void* b;
  void* c;
  double alpha, beta;
  void* workspace;
  size_t workspace_bytes;
};

Status launch_gemm(const GemmParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
