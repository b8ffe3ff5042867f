// CPU reference: sum and max over the middle dim of [outer, n, inner], outputs split over the thread pool.
#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {
constexpr int64_t kGrain = 16384;  // elements read per pool chunk, at least
}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in,
                        int64_t outer, int64_t n, int64_t inner, double scale) {
  dispatch_floating(in.dtype(), "reduce", [&]<class T>() {
    const T* x = static_cast<const T*>(in.data_ptr());
    T* o = static_cast<T*>(out.data_ptr());
    int64_t* idx = op == ReduceOp::max ? indices.data<int64_t>() : nullptr;
    // Outputs are independent (each one's sum runs over j in order): split them over the pool.
    parallel_for(outer * inner, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t q = begin; q < end; ++q) {
                     const int64_t a = q / inner, c = q % inner;
                     const T* p = x + a * n * inner + c;
                     if (op == ReduceOp::sum) {
                       double acc = 0;
                       for (int64_t j = 0; j < n; ++j) acc += to_f64(p[j * inner]);
                       o[a * inner + c] = from_f64<T>(acc * scale);
                     } else {
                       // The first maximum wins; a NaN counts as larger than everything (it propagates).
                       double best = to_f64(p[0]);
                       int64_t arg = 0;
                       for (int64_t j = 1; j < n; ++j) {
                         const double v = to_f64(p[j * inner]);
                         if (v > best || (std::isnan(v) && !std::isnan(best))) {
                           best = v;
                           arg = j;
                         }
                       }
                       o[a * inner + c] = from_f64<T>(best);
                       idx[a * inner + c] = arg;
                     }
                   }
                 });
  });
}

}  // namespace nsa::cpu
