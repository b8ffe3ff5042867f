// CPU reference: softmax / log-softmax over rows, and their backward.
#include <cmath>
#include <limits>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"

namespace nsa::cpu {

void CpuBackend::softmax(const Tensor& out, const Tensor& in, bool log) {
  const int64_t cols = in.size(-1), rows = cols ? in.numel() / cols : 0;
  dispatch_floating(in.dtype(), "softmax", [&]<class T>() {
    const T* x = static_cast<const T*>(in.data_ptr());
    T* y = static_cast<T*>(out.data_ptr());
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, to_f64(xr[c]));
      double total = 0;
      for (int64_t c = 0; c < cols; ++c) total += std::exp(to_f64(xr[c]) - mx);
      const double lse = mx + std::log(total);
      for (int64_t c = 0; c < cols; ++c) {
        const double z = to_f64(xr[c]) - lse;
        yr[c] = from_f64<T>(log ? z : std::exp(z));
      }
    }
  });
}

void CpuBackend::softmax_backward(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                  bool log) {
  const int64_t cols = out.size(-1), rows = cols ? out.numel() / cols : 0;
  dispatch_floating(out.dtype(), "softmax_backward", [&]<class T>() {
    const T* g = static_cast<const T*>(grad_out.data_ptr());
    const T* y = static_cast<const T*>(out.data_ptr());
    T* gi = static_cast<T*>(grad_in.data_ptr());
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = g + r * cols;
      const T* yr = y + r * cols;
      double acc = 0;  // softmax: Σ g·y; log-softmax: Σ g
      for (int64_t c = 0; c < cols; ++c) acc += log ? to_f64(gr[c]) : to_f64(gr[c]) * to_f64(yr[c]);
      for (int64_t c = 0; c < cols; ++c) {
        const double yv = to_f64(yr[c]), gv = to_f64(gr[c]);
        gi[r * cols + c] = from_f64<T>(log ? gv - std::exp(yv) * acc : yv * (gv - acc));
      }
    }
  });
}

}  // namespace nsa::cpu
