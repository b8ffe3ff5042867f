#include "kernels/matmul/gemm.h"

#include <cublasLt.h>

#include <map>
#include <mutex>
#include <tuple>

namespace nsa::kernels {
namespace {

// The part of a GEMM that decides its plan.
struct Key {
  int dtype, device;
  bool ta, tb;
  int64_t batch, m, n, k, lda, ldb, ldc, sa, sb, sc;
  unsigned align_a, align_b, align_c;
  size_t workspace;
  auto tie() const {
    return std::tie(dtype, device, ta, tb, batch, m, n, k, lda, ldb, ldc, sa, sb, sc, align_a, align_b,
                    align_c, workspace);
  }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

unsigned alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  for (unsigned a : {256u, 128u, 64u, 32u, 16u, 8u, 4u})
    if (v % a == 0) return a;
  return 2;
}

cudaDataType_t data_type(ScalarType t) {
  switch (t) {
    case ScalarType::f64:
      return CUDA_R_64F;
    case ScalarType::f32:
      return CUDA_R_32F;
    default:
      return CUDA_R_16BF;
  }
}

class GemmCache {
 public:
  Status run(const GemmParams& p, cudaStream_t stream) {
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return invalid("gemm: no current device");
    std::lock_guard<std::mutex> lock(mu_);
    cublasLtHandle_t handle = nullptr;
    if (auto it = handles_.find(device); it != handles_.end()) {
      handle = it->second;
    } else {
      if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) return invalid("gemm: cublasLtCreate failed");
      handles_[device] = handle;
    }
    const Key key{static_cast<int>(p.dtype),
                  device,
                  p.trans_a,
                  p.trans_b,
                  p.batch,
                  p.m,
                  p.n,
                  p.k,
                  p.lda,
                  p.ldb,
                  p.ldc,
                  p.stride_a,
                  p.stride_b,
                  p.stride_c,
                  alignment(p.a),
                  alignment(p.b),
                  alignment(p.c),
                  p.workspace_bytes};
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      Plan plan;
      if (const char* err = make_plan(handle, p, key, &plan)) return invalid(err);
      it = plans_.emplace(key, plan).first;
    }
    const Plan& plan = it->second;
    // Cᵀ (n×m, column-major) = op(B)ᵀ (n×k) · op(A)ᵀ (k×m): cuBLAS's "A" is our B and its "B" our A.
    cublasStatus_t st;
    if (p.dtype == ScalarType::f64) {
      const double alpha = p.alpha, beta = p.beta;
      st = cublasLtMatmul(handle, plan.op, &alpha, p.b, plan.a, p.a, plan.b, &beta, p.c, plan.c, p.c, plan.c,
                          &plan.algo, p.workspace, p.workspace_bytes, stream);
    } else {
      const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
      st = cublasLtMatmul(handle, plan.op, &alpha, p.b, plan.a, p.a, plan.b, &beta, p.c, plan.c, p.c, plan.c,
                          &plan.algo, p.workspace, p.workspace_bytes, stream);
    }
    if (st != CUBLAS_STATUS_SUCCESS) return invalid("gemm: cublasLtMatmul failed");
    return last_launch();
  }

 private:
  static const char* make_plan(cublasLtHandle_t handle, const GemmParams& p, const Key& key, Plan* plan) {
    const cudaDataType_t dt = data_type(p.dtype);
    const bool f64 = p.dtype == ScalarType::f64;
    const cublasComputeType_t compute = f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
    const cudaDataType_t scale = f64 ? CUDA_R_64F : CUDA_R_32F;
    if (cublasLtMatmulDescCreate(&plan->op, compute, scale) != CUBLAS_STATUS_SUCCESS)
      return "gemm: desc create failed";
    const cublasOperation_t opa = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS A = our B
    const cublasOperation_t opb = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS B = our A
    cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa));
    cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb));
    // Stored (column-major) shapes: our B non-transposed is n×k (ld ldb); transposed it is k×n.
    const uint64_t a_rows = p.trans_b ? p.k : p.n, a_cols = p.trans_b ? p.n : p.k;
    const uint64_t b_rows = p.trans_a ? p.m : p.k, b_cols = p.trans_a ? p.k : p.m;
    if (cublasLtMatrixLayoutCreate(&plan->a, dt, a_rows, a_cols, p.ldb) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatrixLayoutCreate(&plan->b, dt, b_rows, b_cols, p.lda) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatrixLayoutCreate(&plan->c, dt, p.n, p.m, p.ldc) != CUBLAS_STATUS_SUCCESS)
      return "gemm: layout create failed";
    if (p.batch > 1) {
      const int32_t count = static_cast<int32_t>(p.batch);
      const int64_t strides[3] = {p.stride_b, p.stride_a, p.stride_c};
      cublasLtMatrixLayout_t layouts[3] = {plan->a, plan->b, plan->c};
      for (int i = 0; i < 3; ++i) {
        cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                         sizeof(count));
        cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                         sizeof(strides[i]));
      }
    }
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulPreferenceCreate(&pref);
    const uint64_t ws = p.workspace_bytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    // cuBLASLt assumes 256-byte aligned pointers unless told otherwise.
    const uint32_t al_a = key.align_b, al_b = key.align_a, al_c = key.align_c;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                         sizeof(al_a));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                         sizeof(al_b));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                         sizeof(al_c));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                         sizeof(al_c));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, plan->op, plan->a, plan->b, plan->c,
                                                             plan->c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) return "gemm: cuBLASLt found no algorithm for this shape";
    plan->algo = result.algo;
    return nullptr;
  }

  std::mutex mu_;
  std::map<int, cublasLtHandle_t> handles_;
  std::map<Key, Plan> plans_;
};

GemmCache& cache() {
  static GemmCache c;  // its destructor frees nothing that needs CUDA
  return c;
}

}  // namespace

Status launch_gemm(const GemmParams& p, cudaStream_t stream) {
  if (p.m == 0 || p.n == 0 || p.k == 0 || p.batch == 0) return invalid("gemm: empty product");
  return cache().run(p, stream);
}

}  // namespace nsa::kernels
