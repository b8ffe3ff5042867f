// CPU reference of Native Sparse Attention's gate (paper eq. 5; ops/nsa.h nsa_gate_combine), forward and
// backward, in double, rows split over the thread pool (each row written by one thread: the bits do not
// depend on the thread count). Contiguous logits [rows, 3] and branch rows [rows, dim].
#include <algorithm>
#include <cmath>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Rows per pool chunk: at least ~16K elements.
int64_t grain_for(int64_t dim) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)); }

}  // namespace

void CpuBackend::nsa_gate_forward(const Tensor& out, const Tensor& logits, const Tensor& o_cmp,
                                  const Tensor& o_slc, const Tensor& o_win) {
  const int64_t rows = logits.numel() / 3, dim = out.size(-1);
  dispatch_floating(out.dtype(), "nsa_gate_combine", [&]<class T>() {
    const T* g = static_cast<const T*>(logits.data_ptr());
    const T* o[3] = {static_cast<const T*>(o_cmp.data_ptr()), static_cast<const T*>(o_slc.data_ptr()),
                     static_cast<const T*>(o_win.data_ptr())};
    T* y = static_cast<T*>(out.data_ptr());
    parallel_for(rows, grain_for(dim), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        double s[3];
        for (int k = 0; k < 3; ++k) s[k] = sigmoid(to_f64(g[r * 3 + k]));
        for (int64_t i = r * dim; i < (r + 1) * dim; ++i)
          y[i] = from_f64<T>(s[0] * to_f64(o[0][i]) + s[1] * to_f64(o[1][i]) + s[2] * to_f64(o[2][i]));
      }
    });
  });
}

void CpuBackend::nsa_gate_backward(const Tensor& d_logits, const Tensor& d_cmp, const Tensor& d_slc,
                                   const Tensor& d_win, const Tensor& dout, const Tensor& logits,
                                   const Tensor& o_cmp, const Tensor& o_slc, const Tensor& o_win,
                                   const Tensor* deltas) {
  const int64_t rows = logits.numel() / 3, dim = dout.size(-1);
  // deltas [3, B, H, T]: row r = (b·T + t)·H + h lands at (b·H + h)·T + t of each plane.
  const int64_t heads = deltas ? deltas->size(2) : 1, seq = deltas ? deltas->size(3) : 1;
  auto delta_at = [&](int64_t r) { return (r / heads / seq * heads + r % heads) * seq + r / heads % seq; };
  auto put_delta = [&](int k, int64_t r, double value) {
    if (deltas == nullptr) return;
    const int64_t at = k * rows + delta_at(r);
    if (deltas->dtype() == DType::f64) {
      deltas->data<double>()[at] = value;
    } else {
      deltas->data<float>()[at] = static_cast<float>(value);
    }
  };
  dispatch_floating(dout.dtype(), "nsa_gate_combine_backward", [&]<class T>() {
    const T* g = static_cast<const T*>(logits.data_ptr());
    const T* go = static_cast<const T*>(dout.data_ptr());
    const T* o[3] = {static_cast<const T*>(o_cmp.data_ptr()), static_cast<const T*>(o_slc.data_ptr()),
                     static_cast<const T*>(o_win.data_ptr())};
    T* d[3] = {static_cast<T*>(d_cmp.data_ptr()), static_cast<T*>(d_slc.data_ptr()),
               static_cast<T*>(d_win.data_ptr())};
    T* dg = static_cast<T*>(d_logits.data_ptr());
    parallel_for(rows, grain_for(dim), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int k = 0; k < 3; ++k) {
          const double x = to_f64(g[r * 3 + k]), s = sigmoid(x);
          double dot = 0;
          for (int64_t i = r * dim; i < (r + 1) * dim; ++i) {
            const double gv = to_f64(go[i]);
            dot += gv * to_f64(o[k][i]);
            d[k][i] = from_f64<T>(s * gv);
          }
          dg[r * 3 + k] = from_f64<T>(s * sigmoid(-x) * dot);  // σ'(x) = σ(x)·σ(−x)
          put_delta(k, r, s * dot);
        }
      }
    });
  });
}

}  // namespace nsa::cpu
