// CUDA binding: causal grouped-query attention with materialized score matrices.
//
// The G = Hq / Hkv query heads that share a KV head are stacked into the rows of one matrix, so each KV
// head is read by one GEMM: per (b, kv), Q is [G·T, Dk] with rows ordered (g, t), K is [T, Dk], V [T, Dv].
//   forward:  S = Q·Kᵀ [G·T, T] → masked softmax in place (P, lse) → O = P·V
//   backward: S = Q·Kᵀ and dP = dO·Vᵀ → P and dS = scale·P∘(dP − Σ P∘dP) in place
//             → dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q  (the sums over the group fall out of the GEMMs)
// Only lse is saved between forward and backward; the backward recomputes S (one extra GEMM) rather than
// keep P alive across the whole forward. The cost is memory for the scores: B·Hq·T² elements in q's dtype
// during the forward and twice that during the backward (T = 2048, B·Hq = 96, bf16: 0.8 GB per buffer).
// Half of each score matrix is masked and computed anyway.
//
// bf16 with Dk = Dv ∈ {64, 128} takes the fused flash kernels instead (kernels/attention/flash_attention.h:
// no T² buffer, hidden tiles skipped, deterministic backward); the materialized path stays for f32/f64 and
// other head dims, and as the CUDA reference the flash tests compare against.
#include "kernels/attention/flash_attention.h"
#include "kernels/attention/masked_softmax.h"
#include "ops/checks.h"
#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {
namespace {

struct Sizes {
  int64_t batch, seq, heads_q, heads_kv, dim_k, dim_v;
  int64_t group() const { return heads_q / heads_kv; }
  int64_t pairs() const { return batch * heads_kv; }    // GEMM batch: one entry per (b, kv)
  int64_t group_rows() const { return group() * seq; }  // rows (g, t) of one entry
  int64_t score_rows() const { return pairs() * group_rows(); }
};

Sizes sizes_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
}

// Contiguous x [B, T, Hkv·G, D] seen as [B, Hkv, G, T, D] (head h = kv·G + g); a view, no copy.
Tensor grouped_view(const Tensor& x, int64_t heads_kv) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), d = x.size(3), g = h / heads_kv;
  return detail::raw_view(x, {b, heads_kv, g, t, d}, {t * h * d, g * d, d, h * d, 1}, x.offset());
}

// A contiguous [B, Hkv, G, T, D] copy of x [B, T, Hkv·G, D]: the GEMM layout.
Tensor to_grouped(Backend& be, const Tensor& x, int64_t heads_kv) {
  const Tensor src = grouped_view(x, heads_kv);
  Tensor dst = Tensor::empty(src.shape(), x.dtype(), x.device());
  be.copy(dst, src);
  return dst;
}

// out = op(a)·op(b) for `batch` contiguous row-major entries, op(a) [m, k], op(b) [k, n], out [m, n];
// a transposed operand is stored [k, m] (resp. [n, k]).
void batched_gemm(Backend& be, const Tensor& out, const Tensor& a, bool trans_a, const Tensor& b,
                  bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k) {
  GemmArgs g;
  g.out = out;
  g.a = a;
  g.b = b;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.batch = batch;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = trans_a ? m : k;
  g.ldb = trans_b ? k : n;
  g.ldc = n;
  g.stride_a = m * k;
  g.stride_b = k * n;
  g.stride_c = m * n;
  be.gemm(g);
}

kernels::BthStrides bth_strides(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// Whether the flash kernels take this call: dtype and head dims they are built for, unit-stride head dim,
// 16-byte aligned rows (the front end passes contiguous tensors; a view at an odd offset falls back).
bool use_flash(const Sizes& z, DType dtype, std::initializer_list<const Tensor*> operands) {
  if (!kernels::flash_attention_supported(scalar(dtype), z.dim_k, z.dim_v)) return false;
  for (const Tensor* t : operands)
    if (t->stride(3) != 1 || !kernels::flash_operand_ok(t->data_ptr(), bth_strides(*t))) return false;
  return true;
}

kernels::FlashAttentionShape flash_shape(const Sizes& z, double scale, int64_t window) {
  return {z.batch, z.seq, z.heads_q, z.heads_kv, z.dim_k, window, static_cast<float>(scale)};
}

}  // namespace

void CudaBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                    const Tensor& v, double scale, int64_t window) {
  const Sizes z = sizes_of(q, k, v);
  if (use_flash(z, q.dtype(), {&q, &k, &v, &out})) {
    kernels::FlashForwardParams p;
    p.shape = flash_shape(z, scale, window);
    p.q = q.data_ptr();
    p.k = k.data_ptr();
    p.v = v.data_ptr();
    p.out = out.data_ptr();
    p.lse = static_cast<float*>(lse.data_ptr());
    p.q_strides = bth_strides(q);
    p.k_strides = bth_strides(k);
    p.v_strides = bth_strides(v);
    p.out_strides = bth_strides(out);
    check(kernels::launch_flash_attention_forward(p, stream()), "attention");
    return;
  }
  const Tensor qg = to_grouped(*this, q, z.heads_kv);
  const Tensor kg = to_grouped(*this, k, z.heads_kv);
  const Tensor vg = to_grouped(*this, v, z.heads_kv);
  Tensor probs = Tensor::empty({z.pairs(), z.group_rows(), z.seq}, q.dtype(), q.device());
  batched_gemm(*this, probs, qg, false, kg, true, z.pairs(), z.group_rows(), z.seq, z.dim_k);
  kernels::MaskedSoftmaxParams p{
      scalar(q.dtype()), probs.data_ptr(), lse.data_ptr(), z.score_rows(), z.seq, window, scale};
  check(kernels::launch_masked_softmax(p, stream()), "attention");
  Tensor og = Tensor::empty({z.batch, z.heads_kv, z.group(), z.seq, z.dim_v}, q.dtype(), q.device());
  batched_gemm(*this, og, probs, false, vg, false, z.pairs(), z.group_rows(), z.dim_v, z.seq);
  copy(grouped_view(out, z.heads_kv), og);
}

// The materialized path does not read `out` (the row sums Σ P∘dP come from the score rows its kernel
// holds anyway); the flash path forms them as rowsum(dO∘O).
void CudaBackend::attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, double scale, int64_t window,
                                     const AttentionGradOptions& opt) {
  const Sizes z = sizes_of(q, k, v);
  if (use_flash(z, q.dtype(), {&q, &k, &v, &out, &dout, &dq, &dk, &dv})) {
    // A caller's row sums stand in for the kernel's; the kernels only read them then.
    float* given = given_row_sums(opt, z.batch * z.heads_q * z.seq);
    const Tensor delta =
        given ? Tensor()
              : workspace(static_cast<size_t>(z.batch * z.heads_q * z.seq) * sizeof(float), q.device());
    kernels::FlashBackwardParams p;
    p.shape = flash_shape(z, scale, window);
    p.q = q.data_ptr();
    p.k = k.data_ptr();
    p.v = v.data_ptr();
    p.out = out.data_ptr();
    p.dout = dout.data_ptr();
    p.lse = static_cast<const float*>(lse.data_ptr());
    p.delta = given ? given : static_cast<float*>(delta.data_ptr());
    p.dq = dq.data_ptr();
    p.dk = dk.data_ptr();
    p.dv = dv.data_ptr();
    p.q_strides = bth_strides(q);
    p.k_strides = bth_strides(k);
    p.v_strides = bth_strides(v);
    p.out_strides = bth_strides(out);
    p.dout_strides = bth_strides(dout);
    p.dq_strides = bth_strides(dq);
    p.dk_strides = bth_strides(dk);
    p.dv_strides = bth_strides(dv);
    p.delta_ready = given != nullptr;
    p.accumulate_dq = opt.accumulate_dq;
    if (opt.accumulate_dq && !kernels::flash_backward_accumulates(p)) {
      p.accumulate_dq = false;
      write_or_accumulate_dq(*this, dq, true, [&](const Tensor& target) {
        p.dq = target.data_ptr();
        p.dq_strides = bth_strides(target);
        check(kernels::launch_flash_attention_backward(p, stream()), "attention_backward");
      });
      return;
    }
    check(kernels::launch_flash_attention_backward(p, stream()), "attention_backward");
    return;
  }
  if (opt.accumulate_dq) {
    write_or_accumulate_dq(*this, dq, true, [&](const Tensor& target) {
      attention_backward(target, dk, dv, dout, q, k, v, out, lse, scale, window, {});
    });
    return;
  }
  const Tensor qg = to_grouped(*this, q, z.heads_kv);
  const Tensor kg = to_grouped(*this, k, z.heads_kv);
  const Tensor vg = to_grouped(*this, v, z.heads_kv);
  const Tensor dog = to_grouped(*this, dout, z.heads_kv);
  const Dims score_shape{z.pairs(), z.group_rows(), z.seq};
  Tensor probs = Tensor::empty(score_shape, q.dtype(), q.device());
  Tensor dscores = Tensor::empty(score_shape, q.dtype(), q.device());
  batched_gemm(*this, probs, qg, false, kg, true, z.pairs(), z.group_rows(), z.seq, z.dim_k);
  batched_gemm(*this, dscores, dog, false, vg, true, z.pairs(), z.group_rows(), z.seq, z.dim_v);
  kernels::MaskedSoftmaxBackwardParams p{scalar(q.dtype()),
                                         probs.data_ptr(),
                                         dscores.data_ptr(),
                                         lse.data_ptr(),
                                         z.score_rows(),
                                         z.seq,
                                         window,
                                         scale};
  check(kernels::launch_masked_softmax_backward(p, stream()), "attention_backward");

  Tensor dvg = Tensor::empty({z.batch, z.heads_kv, 1, z.seq, z.dim_v}, q.dtype(), q.device());
  batched_gemm(*this, dvg, probs, true, dog, false, z.pairs(), z.seq, z.dim_v, z.group_rows());
  probs = Tensor();  // back to the stream's pool before the next buffers are taken
  copy(grouped_view(dv, z.heads_kv), dvg);

  Tensor dqg = Tensor::empty({z.batch, z.heads_kv, z.group(), z.seq, z.dim_k}, q.dtype(), q.device());
  batched_gemm(*this, dqg, dscores, false, kg, false, z.pairs(), z.group_rows(), z.dim_k, z.seq);
  copy(grouped_view(dq, z.heads_kv), dqg);
  Tensor dkg = Tensor::empty({z.batch, z.heads_kv, 1, z.seq, z.dim_k}, q.dtype(), q.device());
  batched_gemm(*this, dkg, dscores, true, qg, false, z.pairs(), z.seq, z.dim_k, z.group_rows());
  copy(grouped_view(dk, z.heads_kv), dkg);
}

}  // namespace nsa::cuda_binding
