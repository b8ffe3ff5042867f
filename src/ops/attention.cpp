// Front end of the dense attention op: checks, output allocation, autograd. The forward saves only the
// per-row log-sum-exp (not the probabilities), so the backend's backward rebuilds them from q, k and lse.
#include "ops/attention.h"

#include <cmath>

#include "autograd/node.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"

namespace nsa {

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int64_t window) {
  detail::check_floating("attention", q, "q");
  detail::check_floating("attention", k, "k");
  detail::check_floating("attention", v, "v");
  detail::check_same_device("attention", q, k);
  detail::check_same_device("attention", q, v);
  detail::check_same_dtype("attention", q, k);
  detail::check_same_dtype("attention", q, v);
  NSA_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
            "[attention] expected q [B, T, Hq, Dk], k [B, T, Hkv, Dk], v [B, T, Hkv, Dv], got ", q.desc(),
            ", ", k.desc(), ", ", v.desc());
  const int64_t batch = q.size(0), seq = q.size(1), heads_q = q.size(2), dim_k = q.size(3);
  const int64_t heads_kv = k.size(2), dim_v = v.size(3);
  NSA_CHECK(k.size(0) == batch && k.size(1) == seq && k.size(3) == dim_k, "[attention] expected k of shape [",
            batch, ", ", seq, ", Hkv, ", dim_k, "] to match q ", q.desc(), ", got ", k.desc());
  NSA_CHECK(v.size(0) == batch && v.size(1) == seq && v.size(2) == heads_kv,
            "[attention] expected v of shape [", batch, ", ", seq, ", ", heads_kv, ", Dv] to match k ",
            k.desc(), ", got ", v.desc());
  NSA_CHECK(heads_kv > 0 && heads_q % heads_kv == 0, "[attention] expected the query heads (", heads_q,
            ") to be a multiple of the KV heads (", heads_kv, ")");
  NSA_CHECK(dim_k > 0, "[attention] expected a key head dim > 0, got q ", q.desc());
  NSA_CHECK(window >= 0, "[attention] expected window >= 0 (0: unlimited), got ", window);
  NSA_CHECK(std::isfinite(scale), "[attention] expected a finite scale, got ", scale);
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(dim_k));

  const Tensor qc = contiguous(q), kc = contiguous(k), vc = contiguous(v);
  Tensor out = Tensor::empty({batch, seq, heads_q, dim_v}, q.dtype(), q.device());
  Tensor lse =
      Tensor::empty({batch, heads_q, seq}, q.dtype() == DType::f64 ? DType::f64 : DType::f32, q.device());
  const bool work = out.numel() > 0;  // no rows, or Dv = 0: nothing to compute
  if (work) backend_for(q.device()).attention_forward(out, lse, qc, kc, vc, scale, window);
  autograd::record("attention", {qc, kc, vc}, out,
                   [qs = qc.alias(), ks = kc.alias(), vs = vc.alias(), os = out.alias(), lse, scale, window,
                    work](std::span<const Tensor> g) {
                     Tensor dq = Tensor::empty(qs.shape(), qs.dtype(), qs.device());
                     Tensor dk = Tensor::empty(ks.shape(), ks.dtype(), ks.device());
                     Tensor dv = Tensor::empty(vs.shape(), vs.dtype(), vs.device());
                     if (work) {
                       backend_for(qs.device())
                           .attention_backward(dq, dk, dv, contiguous(g[0]), qs, ks, vs, os, lse, scale,
                                               window);
                     } else {
                       for (const Tensor& t : {dq, dk, dv}) fill_(t, 0.0);
                     }
                     return std::vector<Tensor>{dq, dk, dv};
                   });
  return out;
}

}  // namespace nsa
