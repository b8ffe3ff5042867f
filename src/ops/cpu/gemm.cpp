// CPU GEMM: f32 and bf16 go to the packed, multi-threaded kernels (gemm_packed.h); f64 (gradient checks)
// and empty shapes take the reference loop: double accumulation, loop order chosen so the innermost loop
// walks contiguous memory. The reference is also the fast kernels' test oracle (tests/ops/test_cpu_gemm.cpp).
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/gemm_packed.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {

void gemm_reference(const GemmArgs& g) {
  dispatch_floating(g.out.dtype(), "matmul", [&]<class T>() {
    const T* a = static_cast<const T*>(g.a.data_ptr());
    const T* b = static_cast<const T*>(g.b.data_ptr());
    T* c = static_cast<T*>(g.out.data_ptr());
    std::vector<double> row(static_cast<size_t>(g.n));
    for (int64_t bt = 0; bt < g.batch; ++bt) {
      const T* ab = a + bt * g.stride_a;
      const T* bb = b + bt * g.stride_b;
      T* cb = c + bt * g.stride_c;
      auto A = [&](int64_t i, int64_t p) {
        return to_f64(g.trans_a ? ab[p * g.lda + i] : ab[i * g.lda + p]);
      };
      for (int64_t i = 0; i < g.m; ++i) {
        std::fill(row.begin(), row.end(), 0.0);
        if (g.trans_b) {  // B stored [n, k]: dot products over contiguous k
          for (int64_t j = 0; j < g.n; ++j) {
            double acc = 0;
            for (int64_t p = 0; p < g.k; ++p) acc += A(i, p) * to_f64(bb[j * g.ldb + p]);
            row[j] = acc;
          }
        } else {  // B stored [k, n]: accumulate scaled rows of B
          for (int64_t p = 0; p < g.k; ++p) {
            const double av = A(i, p);
            const T* brow = bb + p * g.ldb;
            for (int64_t j = 0; j < g.n; ++j) row[j] += av * to_f64(brow[j]);
          }
        }
        for (int64_t j = 0; j < g.n; ++j) {
          const double prev = g.beta != 0.0 ? to_f64(cb[i * g.ldc + j]) : 0.0;
          cb[i * g.ldc + j] = from_f64<T>(g.alpha * row[j] + g.beta * prev);
        }
      }
    }
  });
}

void CpuBackend::gemm(const GemmArgs& g) {
  const bool empty = g.batch <= 0 || g.m <= 0 || g.n <= 0 || g.k <= 0;
  if (g.out.dtype() == DType::f64 || empty) {
    gemm_reference(g);
  } else {
    gemm_packed(g, best_gemm_kernel());
  }
}

}  // namespace nsa::cpu
