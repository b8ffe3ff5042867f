// CPU reference: RMSNorm forward and backward. Rows are split over the thread pool, and the weight
// gradient's columns too (each column still sums its rows in order), so the bits match a serial run.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

template <class L>
L* stat_ptr(const Tensor& t) {
  return static_cast<L*>(t.data_ptr());
}

// rstd is stored as f64 for f64 inputs and f32 otherwise.
double read_stat(const Tensor& t, int64_t i) {
  return t.dtype() == DType::f64 ? t.data<double>()[i] : static_cast<double>(t.data<float>()[i]);
}

// Rows (or columns) per pool chunk for `len` elements each: at least ~16K elements.
int64_t grain_for(int64_t len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)); }

}  // namespace

void CpuBackend::rms_norm(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                          double eps) {
  const int64_t dim = x.size(-1), rows = dim ? x.numel() / dim : 0;
  dispatch_floating(x.dtype(), "rms_norm", [&]<class T>() {
    const T* px = static_cast<const T*>(x.data_ptr());
    const T* pw = static_cast<const T*>(weight.data_ptr());
    T* py = static_cast<T*>(y.data_ptr());
    parallel_for(rows, grain_for(dim), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        double ss = 0;
        for (int64_t c = 0; c < dim; ++c) ss += to_f64(px[r * dim + c]) * to_f64(px[r * dim + c]);
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(dim) + eps);
        if (rstd.dtype() == DType::f64) {
          stat_ptr<double>(rstd)[r] = inv;
        } else {
          stat_ptr<float>(rstd)[r] = static_cast<float>(inv);
        }
        for (int64_t c = 0; c < dim; ++c)
          py[r * dim + c] = from_f64<T>(to_f64(px[r * dim + c]) * inv * to_f64(pw[c]));
      }
    });
  });
}

void CpuBackend::rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_y,
                                   const Tensor& x, const Tensor& weight, const Tensor& rstd) {
  const int64_t dim = x.size(-1), rows = dim ? x.numel() / dim : 0;
  dispatch_floating(x.dtype(), "rms_norm_backward", [&]<class T>() {
    const T* px = static_cast<const T*>(x.data_ptr());
    const T* pw = static_cast<const T*>(weight.data_ptr());
    const T* pg = static_cast<const T*>(grad_y.data_ptr());
    T* pgx = static_cast<T*>(grad_x.data_ptr());
    parallel_for(rows, grain_for(dim), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double inv = read_stat(rstd, r);
        // y = x·r·w, r = (mean(x²)+eps)^(-1/2):  dx_j = r·w_j·g_j − x_j·r³·mean_k(g_k·w_k·x_k)
        double dot = 0;
        for (int64_t c = 0; c < dim; ++c)
          dot += to_f64(pg[r * dim + c]) * to_f64(pw[c]) * to_f64(px[r * dim + c]);
        const double coef = dot / static_cast<double>(dim) * inv * inv * inv;
        for (int64_t c = 0; c < dim; ++c) {
          const double xv = to_f64(px[r * dim + c]), gv = to_f64(pg[r * dim + c]);
          pgx[r * dim + c] = from_f64<T>(inv * to_f64(pw[c]) * gv - xv * coef);
        }
      }
    });
    if (grad_weight.defined()) {
      // dw_c = Σ_r g·x·rstd, each column over the rows in order (columns split over the pool).
      T* pgw = static_cast<T*>(grad_weight.data_ptr());
      std::vector<double> inv(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) inv[static_cast<size_t>(r)] = read_stat(rstd, r);
      parallel_for(dim, grain_for(rows), [&](int64_t begin, int64_t end) {
        std::vector<double> gw(static_cast<size_t>(end - begin), 0.0);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = begin; c < end; ++c) {
            const double xv = to_f64(px[r * dim + c]), gv = to_f64(pg[r * dim + c]);
            gw[static_cast<size_t>(c - begin)] += gv * xv * inv[static_cast<size_t>(r)];
          }
        }
        for (int64_t c = begin; c < end; ++c) pgw[c] = from_f64<T>(gw[static_cast<size_t>(c - begin)]);
      });
    }
  });
}

}  // namespace nsa::cpu
