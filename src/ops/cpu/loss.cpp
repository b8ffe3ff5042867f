// CPU reference: fused cross-entropy (log-sum-exp per row, mean over counted rows) and its backward. Rows
// are split over the thread pool; the mean still sums the rows in order, so the bits match a serial run.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

// Rows per pool chunk: at least ~16K logits.
int64_t row_grain(int64_t vocab) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(vocab, 1)); }

// The accumulation type of the loss outputs: f64 for f64 logits, else f32.
template <class F>
void with_loss_type(DType t, F&& f) {
  if (t == DType::f64) {
    f.template operator()<double>();
  } else {
    f.template operator()<float>();
  }
}

}  // namespace

void CpuBackend::cross_entropy(const Tensor& loss, const Tensor& lse, const Tensor& count,
                               const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  const int64_t vocab = logits.size(-1), rows = logits.size(0);
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    with_loss_type(loss.dtype(), [&]<class L>() {
      const T* x = static_cast<const T*>(logits.data_ptr());
      L* lse_out = static_cast<L*>(lse.data_ptr());
      std::vector<double> row_lse(static_cast<size_t>(rows));
      parallel_for(rows, row_grain(vocab), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* xr = x + r * vocab;
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t c = 0; c < vocab; ++c) mx = std::max(mx, to_f64(xr[c]));
          double s = 0;
          for (int64_t c = 0; c < vocab; ++c) s += std::exp(to_f64(xr[c]) - mx);
          const double l = mx + std::log(s);
          row_lse[static_cast<size_t>(r)] = l;
          lse_out[r] = static_cast<L>(l);
        }
      });
      double total = 0;
      int64_t counted = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = index_at(targets, r);
        if (t == ignore_index) continue;
        NSA_CHECK(t >= 0 && t < vocab, "[cross_entropy] target ", t, " at row ", r, " outside [0, ", vocab,
                  ")");
        total += row_lse[static_cast<size_t>(r)] - to_f64(x[r * vocab + t]);
        counted++;
      }
      *static_cast<L*>(count.data_ptr()) = static_cast<L>(counted);
      *static_cast<L*>(loss.data_ptr()) = static_cast<L>(counted ? total / counted : 0.0);
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss,
                                        const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                        const Tensor& count, int64_t ignore_index) {
  const int64_t vocab = logits.size(-1), rows = logits.size(0);
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    with_loss_type(grad_loss.dtype(), [&]<class L>() {
      const T* x = static_cast<const T*>(logits.data_ptr());
      T* gx = static_cast<T*>(grad_logits.data_ptr());
      const L* lse_in = static_cast<const L*>(lse.data_ptr());
      const double n = static_cast<double>(*static_cast<const L*>(count.data_ptr()));
      const double g = static_cast<double>(*static_cast<const L*>(grad_loss.data_ptr())) / std::max(n, 1.0);
      parallel_for(rows, row_grain(vocab), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t t = index_at(targets, r);
          for (int64_t c = 0; c < vocab; ++c) {
            const double p = std::exp(to_f64(x[r * vocab + c]) - static_cast<double>(lse_in[r]));
            gx[r * vocab + c] = from_f64<T>(t == ignore_index ? 0.0 : g * (p - (c == t ? 1.0 : 0.0)));
          }
        }
      });
    });
  });
}

}  // namespace nsa::cpu
