// Backend: the primitive kernels every device implements, declared once. The CPU backend (ops/cpu) is the
// reference: plain loops accumulating in double. The CUDA backend (ops/cuda) turns tensors into the
// parameter structs of kernels/ and launches them on the current stream.
//
// Contract: the op front ends (ops/*.cpp) have already checked shapes, dtypes and devices and allocated
// the outputs; a primitive only computes. Tensors passed as "contiguous" are contiguous; the others may
// have any strides (0 for broadcast). A new primitive is added here, in CpuBackend and in CudaBackend; the
// compiler refuses a backend that misses one.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/common/op_codes.h"  // UnaryOp, BinaryOp, ReduceOp, RandomDist (shared with kernels)

namespace nsa {

// out = alpha · op(A) · op(B) + beta · out, row-major, batched with strides (0 = broadcast).
// op(A) is [m, k]: element (i, p) at a[i·lda + p], or at a[p·lda + i] when trans_a. Likewise B ([k, n]).
struct GemmArgs {
  Tensor out, a, b;
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // between batch entries, in elements
  double alpha = 1.0, beta = 0.0;
};

// Block geometry of Native Sparse Attention (ops/nsa.h, docs/nsa.md): compression blocks of cmp_block
// tokens every cmp_stride tokens (block i: [i·stride, i·stride + cmp_block)), selection blocks of
// slc_block tokens (block j: [j·slc_block, (j+1)·slc_block)), top_n selected per query and KV head of
// which init_blocks leading and local_blocks most recent ones are forced.
struct NsaBlocks {
  int64_t cmp_block = 0, cmp_stride = 0, slc_block = 0, top_n = 0, init_blocks = 0, local_blocks = 0;
};

// What a caller holding more than one attention branch can hand an attention backward (nsa_attention's
// backward, which runs all three branches after its gate): `delta` = rowsum(dout ∘ out) [B, Hq, T], f32,
// already computed (backends may use it or compute their own), and `accumulate_dq`: dq += the branch's dq
// instead of dq = (a backend whose kernels cannot accumulate adds through a temporary).
struct AttentionGradOptions {
  const Tensor* delta = nullptr;
  bool accumulate_dq = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // dst = src (same shape, any dtypes, any strides on both sides).
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;
  // Contiguous dst; element i takes philox element offset + i (core/philox.h). uniform: [a, b);
  // normal: mean a, std b.
  virtual void random(const Tensor& dst, RandomDist dist, uint64_t seed, uint64_t offset, double a,
                      double b) = 0;

  // Elementwise over the shape of `out`; inputs have out's shape (broadcast already expressed as strides).
  virtual void unary(UnaryOp op, const Tensor& out, const Tensor& a, double alpha) = 0;
  virtual void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // ga = g·b·silu'(a), gb = g·silu(a), for out = silu(a)·b.
  virtual void swiglu_backward(const Tensor& ga, const Tensor& gb, const Tensor& g, const Tensor& a,
                               const Tensor& b) = 0;

  // `in` contiguous, read as [outer, n, inner]; out (contiguous [outer, inner]) = scale · Σ (sum) or max
  // over n; for max, `indices` (i64 [outer, inner]) receives the first position of the maximum.
  virtual void reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in, int64_t outer,
                      int64_t n, int64_t inner, double scale) = 0;

  // Row-wise over the last dim of contiguous [rows, cols] tensors.
  virtual void softmax(const Tensor& out, const Tensor& in, bool log) = 0;
  virtual void softmax_backward(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                bool log) = 0;

  // logits contiguous [rows, vocab]; targets [rows] (i32/i64). Writes lse [rows] (f32, or f64 for f64
  // logits), count (0-d, same dtype: the number of rows whose target != ignore_index) and loss (0-d, same
  // dtype) = mean over counted rows of lse - logit[target] (0 when no row counts).
  virtual void cross_entropy(const Tensor& loss, const Tensor& lse, const Tensor& count, const Tensor& logits,
                             const Tensor& targets, int64_t ignore_index) = 0;
  // grad_logits = grad_loss / count · (softmax(logits) - onehot(target)), zero rows where ignored.
  virtual void cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss,
                                      const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                      const Tensor& count, int64_t ignore_index) = 0;

  // x contiguous [rows, dim]; weight [dim]; y = x · rstd · weight with rstd = 1/sqrt(mean(x^2) + eps),
  // saved as f32 (f64 for f64) [rows].
  virtual void rms_norm(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                        double eps) = 0;
  // grad_weight may be undefined (weight needs no grad).
  virtual void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_y,
                                 const Tensor& x, const Tensor& weight, const Tensor& rstd) = 0;

  // x contiguous [tokens, heads, head_dim]; positions [tokens] (i32/i64). Rotates pairs (i, i + rot_dim/2)
  // of the first rot_dim dims by positions·theta^(-2i/rot_dim) (by minus that angle when inverse).
  virtual void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta,
                    int64_t rot_dim, bool inverse) = 0;

  // in contiguous [rows, n]; the k largest of each row, in descending order (ties: lower index first).
  virtual void topk(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k) = 0;

  // src contiguous [outer, n, inner], index [m] (i32/i64): out [outer, m, inner] = src[:, index, :].
  virtual void index_select(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer,
                            int64_t n, int64_t inner) = 0;
  // dst contiguous [outer, n, inner] += src [outer, m, inner] scattered to rows index [m].
  virtual void index_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                         int64_t inner) = 0;
  // src [outer, n, inner], index and out [outer, m, inner]: out[o, j, i] = src[o, index[o, j, i], i].
  virtual void gather(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer, int64_t n,
                      int64_t inner) = 0;
  // dst[o, index[o, j, i], i] += src[o, j, i].
  virtual void scatter_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer,
                           int64_t n, int64_t inner) = 0;
  // Vocabulary-shard lookup for tensor parallelism: for contiguous ids (i32/i64), local (i64, same numel)
  // = ids - begin and mask (floating) = 1 where begin <= id < begin + count; local = 0 and mask = 0
  // elsewhere.
  virtual void shard_index(const Tensor& local, const Tensor& mask, const Tensor& ids, int64_t begin,
                           int64_t count) = 0;

  virtual void gemm(const GemmArgs& args) = 0;

  // Causal attention with grouped KV heads (ops/attention.h). Contiguous q [B, T, Hq, Dk], k [B, T, Hkv, Dk],
  // v [B, T, Hkv, Dv], out [B, T, Hq, Dv]; query head h reads KV head h / (Hq / Hkv); query t sees keys s
  // with t - window < s <= t (window 0: all s <= t). lse [B, Hq, T] (f32, or f64 for f64) receives the
  // log-sum-exp of each row's scaled scores, so the backward can rebuild the probabilities.
  virtual void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                 const Tensor& v, double scale, int64_t window) = 0;
  // dq, dk, dv (contiguous, shapes of q, k, v) are overwritten; dout contiguous [B, T, Hq, Dv].
  virtual void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                  const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, double scale, int64_t window,
                                  const AttentionGradOptions& opt = {}) = 0;

  // Native Sparse Attention (ops/nsa.h, docs/nsa.md). All tensors contiguous, [B, T, H, D] layouts, query
  // head h reads KV head h / (Hq / Hkv); lse [B, Hq, T] (f32, or f64 for f64), −inf for a row that sees
  // no key (its out row is 0). Backward outputs are overwritten.
  //
  // Compressed attention: q [B, T, Hq, Dk], kc [B, Nc, Hkv, Dk], vc [B, Nc, Hkv, Dv], out [B, T, Hq, Dv];
  // query t sees compressed block i iff i·cmp_stride + cmp_block − 1 <= t.
  virtual void nsa_cmp_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& kc,
                                 const Tensor& vc, const NsaBlocks& blocks, double scale) = 0;
  virtual void nsa_cmp_attention_backward(const Tensor& dq, const Tensor& dkc, const Tensor& dvc,
                                          const Tensor& dout, const Tensor& q, const Tensor& kc,
                                          const Tensor& vc, const Tensor& out, const Tensor& lse,
                                          const NsaBlocks& blocks, double scale,
                                          const AttentionGradOptions& opt = {}) = 0;
  // Block selection: indices i32 [B, T, Hkv, top_n] from p_cmp = exp(scale·q·kc − lse) (lse of
  // nsa_cmp_attention): group-summed overlap-weighted importance, forced blocks, top-n among the visible
  // blocks (j·slc_block <= t), ties to the lower index; ascending, −1 for unused slots.
  virtual void nsa_select(const Tensor& indices, const Tensor& q, const Tensor& kc, const Tensor& lse,
                          const NsaBlocks& blocks, double scale) = 0;
  // Selected attention: q [B, T, Hq, Dk], k [B, T, Hkv, Dk], v [B, T, Hkv, Dv], indices [B, T, Hkv, n]
  // (i32/i64, distinct, −1 = empty); query t attends to the tokens s <= t of its KV head's blocks.
  virtual void nsa_slc_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& indices, const NsaBlocks& blocks,
                                 double scale) = 0;
  virtual void nsa_slc_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                          const Tensor& dout, const Tensor& q, const Tensor& k,
                                          const Tensor& v, const Tensor& indices, const Tensor& out,
                                          const Tensor& lse, const NsaBlocks& blocks, double scale,
                                          const AttentionGradOptions& opt = {}) = 0;
  // The gate (paper eq. 5): logits [rows, 3] (cmp, slc, win), branch outputs and out [rows, Dv], rows =
  // B·T·Hq. out = Σ_c σ(logits[:, c])·o_c. Backward: d_o_c = σ(logits[:, c])·dout and
  // d_logits[:, c] = σ'(logits[:, c])·Σ_Dv dout·o_c (0 when Dv = 0). `deltas` (optional, f32 or f64
  // [3, B, H, T] with rows = B·T·H) receives each branch's rowsum(d_o_c ∘ o_c) = σ(logits[:, c])·Σ_Dv
  // dout·o_c (AttentionGradOptions::delta of the branch backwards).
  virtual void nsa_gate_forward(const Tensor& out, const Tensor& logits, const Tensor& o_cmp,
                                const Tensor& o_slc, const Tensor& o_win) = 0;
  virtual void nsa_gate_backward(const Tensor& d_logits, const Tensor& d_cmp, const Tensor& d_slc,
                                 const Tensor& d_win, const Tensor& dout, const Tensor& logits,
                                 const Tensor& o_cmp, const Tensor& o_slc, const Tensor& o_win,
                                 const Tensor* deltas = nullptr) = 0;

  // Throws if a kernel flagged bad input since the last call (an index or target out of range). Waits for
  // the device: call it at sync points (logging, the end of a test), never inside a step.
  virtual void check_errors() {}
};

// The backend of a device (throws when CUDA is asked for and unavailable).
Backend& backend_for(Device device);

// A backward that writes dq through `write(target)`, made to accumulate (dq += …) when asked: into a
// temporary, then one add. For the backends' paths whose kernels only overwrite.
template <class Write>
void write_or_accumulate_dq(Backend& be, const Tensor& dq, bool accumulate, Write&& write) {
  if (!accumulate) {
    write(dq);
    return;
  }
  const Tensor part = Tensor::empty(dq.shape(), dq.dtype(), dq.device());
  write(part);
  be.binary(BinaryOp::add, dq, dq, part);
}
Backend& cpu_backend();

// backend_for(device).check_errors().
void check_device_errors(Device device);

}  // namespace nsa
