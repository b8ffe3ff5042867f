// CPU reference: top-k per row by a stable sort of indices (descending value, ascending index).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {

void CpuBackend::topk(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k) {
  const int64_t n = in.size(-1), rows = n ? in.numel() / n : 0;
  dispatch_floating(in.dtype(), "topk", [&]<class T>() {
    const T* x = static_cast<const T*>(in.data_ptr());
    T* v = static_cast<T*>(values.data_ptr());
    int64_t* idx = indices.data<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * n;
      std::iota(order.begin(), order.end(), 0);
      // Larger first, NaN above every number (as max does); stable: ties keep the lower index first.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const double va = to_f64(xr[a]), vb = to_f64(xr[b]);
        if (std::isnan(va) != std::isnan(vb)) return std::isnan(va);
        return va > vb;
      });
      for (int64_t j = 0; j < k; ++j) {
        idx[r * k + j] = order[j];
        v[r * k + j] = xr[order[j]];
      }
    }
  });
}

}  // namespace nsa::cpu
