// CPU reference: causal grouped-query attention, forward and backward, in double.
//
// One (batch, query head, query position) row at a time: the row's scores over its visible keys are kept
// in a buffer, so the softmax is the plain two-pass one (max, then exp and sum). Inputs are converted to
// double once per call; every inner loop runs over a contiguous head dim. Work is split over (batch, head)
// pairs on the CPU thread pool, each output element having one writer.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/attention_math.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

// Sizes of one call; tensors are [B, T, H, D] contiguous.
struct Geometry {
  int64_t batch, seq, heads_q, heads_kv, dim_k, dim_v, window;
  int64_t group() const { return heads_q / heads_kv; }
  // First key position visible from query t.
  int64_t first_key(int64_t t) const { return window > 0 ? std::max<int64_t>(0, t - window + 1) : 0; }
  // (batch, query head) pairs per parallel task: enough that a task is worth a thread (~64k multiply-adds;
  // a bound, since a window makes rows shorter), so the small shapes of gradient checks run inline.
  int64_t grain() const {
    const int64_t work = std::max<int64_t>(1, seq * (seq + 1) / 2 * (dim_k + dim_v));
    return std::max<int64_t>(1, (int64_t{1} << 16) / work);
  }
};

Geometry geometry(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), window};
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                   const Tensor& v, double scale, int64_t window) {
  const Geometry g = geometry(q, k, v, window);
  dispatch_floating(q.dtype(), "attention", [&]<class T>() {
    const std::vector<double> qd = to_doubles<T>(q), kd = to_doubles<T>(k), vd = to_doubles<T>(v);
    std::vector<double> od(static_cast<size_t>(out.numel()), 0.0);
    // Each (b, h) writes only its own rows of out and lse.
    parallel_for(g.batch * g.heads_q, g.grain(), [&](int64_t begin, int64_t end) {
      std::vector<double> p(static_cast<size_t>(g.seq));
      for (int64_t pair = begin; pair < end; ++pair) {
        const int64_t b = pair / g.heads_q, h = pair % g.heads_q, kv = h / g.group();
        for (int64_t t = 0; t < g.seq; ++t) {
          const double* qrow = &qd[((b * g.seq + t) * g.heads_q + h) * g.dim_k];
          const int64_t lo = g.first_key(t);
          double mx = -INFINITY;
          for (int64_t s = lo; s <= t; ++s) {
            p[s] = scale * dot(qrow, &kd[((b * g.seq + s) * g.heads_kv + kv) * g.dim_k], g.dim_k);
            mx = std::max(mx, p[s]);
          }
          double sum = 0;
          for (int64_t s = lo; s <= t; ++s) sum += (p[s] = std::exp(p[s] - mx));
          double* orow = &od[((b * g.seq + t) * g.heads_q + h) * g.dim_v];
          for (int64_t s = lo; s <= t; ++s)
            axpy(orow, p[s] / sum, &vd[((b * g.seq + s) * g.heads_kv + kv) * g.dim_v], g.dim_v);
          const double row_lse = mx + std::log(sum);
          const int64_t li = (b * g.heads_q + h) * g.seq + t;
          if (lse.dtype() == DType::f64) {
            lse.data<double>()[li] = row_lse;
          } else {
            lse.data<float>()[li] = static_cast<float>(row_lse);
          }
        }
      }
    });
    store<T>(out, od);
  });
}

// With P = softmax(scale · q·kᵀ) per row and O = P·v:
//   dV_s += P_ts · dO_t,  dP_ts = dO_t·v_s,  dS_ts = P_ts · (dP_ts − D_t),  D_t = Σ_s P_ts·dP_ts = dO_t·O_t,
//   dQ_t += scale · Σ_s dS_ts · k_s,  dK_s += scale · dS_ts · q_t.
void CpuBackend::attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, double scale, int64_t window,
                                    const AttentionGradOptions& opt) {
  // The reference forms its own row sums (opt.delta unused).
  if (opt.accumulate_dq) {
    write_or_accumulate_dq(*this, dq, true, [&](const Tensor& target) {
      attention_backward(target, dk, dv, dout, q, k, v, out, lse, scale, window, {});
    });
    return;
  }
  const Geometry g = geometry(q, k, v, window);
  dispatch_floating(q.dtype(), "attention_backward", [&]<class T>() {
    const std::vector<double> qd = to_doubles<T>(q), kd = to_doubles<T>(k), vd = to_doubles<T>(v);
    const std::vector<double> od = to_doubles<T>(out), dod = to_doubles<T>(dout);
    std::vector<double> dqd(qd.size(), 0.0), dkd(kd.size(), 0.0), dvd(vd.size(), 0.0);
    // A task owns a (b, kv) pair: the dk, dv rows its G query heads add into are its alone, and the
    // order of the additions does not depend on the split (bit-identical for any thread count).
    parallel_for(
        g.batch * g.heads_kv, std::max<int64_t>(1, g.grain() / g.group()), [&](int64_t begin, int64_t end) {
          for (int64_t pair = begin; pair < end; ++pair) {
            const int64_t b = pair / g.heads_kv, kv = pair % g.heads_kv;
            for (int64_t h = kv * g.group(); h < (kv + 1) * g.group(); ++h) {
              for (int64_t t = 0; t < g.seq; ++t) {
                const int64_t qi = (b * g.seq + t) * g.heads_q + h;
                const double* qrow = &qd[qi * g.dim_k];
                const double* dorow = &dod[qi * g.dim_v];
                double* dqrow = &dqd[qi * g.dim_k];
                const double row_lse = read_lse(lse, (b * g.heads_q + h) * g.seq + t);
                const double d = dot(dorow, &od[qi * g.dim_v], g.dim_v);
                for (int64_t s = g.first_key(t); s <= t; ++s) {
                  const int64_t ki = (b * g.seq + s) * g.heads_kv + kv;
                  const double prob = std::exp(scale * dot(qrow, &kd[ki * g.dim_k], g.dim_k) - row_lse);
                  const double dp = dot(dorow, &vd[ki * g.dim_v], g.dim_v);
                  const double ds = scale * prob * (dp - d);
                  axpy(&dvd[ki * g.dim_v], prob, dorow, g.dim_v);
                  axpy(dqrow, ds, &kd[ki * g.dim_k], g.dim_k);
                  axpy(&dkd[ki * g.dim_k], ds, qrow, g.dim_k);
                }
              }
            }
          }
        });
    store<T>(dq, dqd);
    store<T>(dk, dkd);
    store<T>(dv, dvd);
  });
}

}  // namespace nsa::cpu
