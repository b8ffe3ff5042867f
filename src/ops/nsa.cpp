// Front ends of Native Sparse Attention (ops/nsa.h, docs/nsa.md): checks, output allocation, autograd,
// and the composition of the three branches. The attention branches save only their log-sum-exp; the
// backward primitives rebuild the probabilities from q, k and lse (as ops/attention does).
#include "ops/nsa.h"

#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/backend.h"
#include "ops/checks.h"
#include "ops/copy.h"
#include "ops/elementwise.h"
#include "ops/factory.h"
#include "ops/indexing.h"
#include "ops/matmul.h"
#include "ops/view.h"

namespace nsa {
namespace {

// The block geometry of `cfg`, checked. Eq. 9 counts overlaps in d-token segments, so l and l' must be
// multiples of d; the forced blocks must fit in the n selected ones.
NsaBlocks blocks_of(const char* op, const NsaConfig& cfg) {
  NSA_CHECK(cfg.cmp_block > 0 && cfg.cmp_stride > 0 && cfg.cmp_stride <= cfg.cmp_block, "[", op,
            "] expected 0 < cmp_stride (", cfg.cmp_stride, ") <= cmp_block (", cfg.cmp_block, ")");
  NSA_CHECK(cfg.cmp_block % cfg.cmp_stride == 0 && cfg.slc_block > 0 && cfg.slc_block % cfg.cmp_stride == 0,
            "[", op, "] expected cmp_block (", cfg.cmp_block, ") and slc_block (", cfg.slc_block,
            ") to be positive multiples of cmp_stride (", cfg.cmp_stride, ")");
  NSA_CHECK(cfg.slc_init_blocks >= 0 && cfg.slc_local_blocks >= 0 &&
                cfg.slc_init_blocks + cfg.slc_local_blocks <= cfg.slc_top_n && cfg.slc_top_n >= 1,
            "[", op, "] expected slc_top_n (", cfg.slc_top_n, ") >= 1 and >= slc_init_blocks (",
            cfg.slc_init_blocks, ") + slc_local_blocks (", cfg.slc_local_blocks, "), both >= 0");
  return {.cmp_block = cfg.cmp_block,
          .cmp_stride = cfg.cmp_stride,
          .slc_block = cfg.slc_block,
          .top_n = cfg.slc_top_n,
          .init_blocks = cfg.slc_init_blocks,
          .local_blocks = cfg.slc_local_blocks};
}

double resolve_scale(const char* op, double scale, int64_t dim_k) {
  NSA_CHECK(std::isfinite(scale), "[", op, "] expected a finite scale, got ", scale);
  return scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(dim_k)) : scale;
}

void check_floating_same(const char* op, const Tensor& ref,
                         std::initializer_list<std::pair<const Tensor*, const char*>> ts) {
  for (const auto& [t, what] : ts) {
    detail::check_floating(op, *t, what);
    detail::check_same_device(op, ref, *t);
    detail::check_same_dtype(op, ref, *t);
  }
}

// q [B, T, Hq, Dk] against keys/values [B, S, Hkv, Dk] / [B, S, Hkv, Dv], S = `keys`.
void check_attention_shapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, int64_t keys) {
  NSA_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "[", op,
            "] expected q [B, T, Hq, Dk], k [B, S, Hkv, Dk], v [B, S, Hkv, Dv], got ", q.desc(), ", ",
            k.desc(), ", ", v.desc());
  const int64_t batch = q.size(0), heads_q = q.size(2), dim_k = q.size(3), heads_kv = k.size(2);
  NSA_CHECK(k.size(0) == batch && k.size(1) == keys && k.size(3) == dim_k, "[", op, "] expected k of shape [",
            batch, ", ", keys, ", Hkv, ", dim_k, "] for q ", q.desc(), ", got ", k.desc());
  NSA_CHECK(v.size(0) == batch && v.size(1) == keys && v.size(2) == heads_kv, "[", op,
            "] expected v of shape [", batch, ", ", keys, ", ", heads_kv, ", Dv] to match k ", k.desc(),
            ", got ", v.desc());
  NSA_CHECK(heads_kv > 0 && heads_q % heads_kv == 0, "[", op, "] expected the query heads (", heads_q,
            ") to be a multiple of the KV heads (", heads_kv, ")");
  NSA_CHECK(dim_k > 0, "[", op, "] expected a key head dim > 0, got q ", q.desc());
}

// A selection for q [B, T, Hq, Dk] over keys k [B, T, Hkv, Dk]: [B, T, Hkv, n], i32 or i64.
void check_indices(const char* op, const Tensor& q, const Tensor& k, const Tensor& indices) {
  detail::check_index(op, indices, "indices");
  detail::check_same_device(op, q, indices);
  NSA_CHECK(indices.dim() == 4 && indices.size(0) == q.size(0) && indices.size(1) == q.size(1) &&
                indices.size(2) == k.size(2),
            "[", op, "] expected indices [", q.size(0), ", ", q.size(1), ", ", k.size(2), ", n], got ",
            indices.desc());
}

Tensor new_lse(const Tensor& q) {
  return Tensor::empty({q.size(0), q.size(2), q.size(1)}, q.dtype() == DType::f64 ? DType::f64 : DType::f32,
                       q.device());
}

}  // namespace

int64_t nsa_num_cmp_blocks(int64_t seq, const NsaConfig& cfg) {
  blocks_of("nsa_num_cmp_blocks", cfg);
  return seq >= cfg.cmp_block ? (seq - cfg.cmp_block) / cfg.cmp_stride + 1 : 0;
}

int64_t nsa_num_slc_blocks(int64_t seq, const NsaConfig& cfg) {
  blocks_of("nsa_num_slc_blocks", cfg);
  return (seq + cfg.slc_block - 1) / cfg.slc_block;
}

namespace {

// φ's inputs checked against each other; returns Nc.
int64_t check_compress(const char* op, const Tensor& x, const Tensor& pos_emb, const Tensor& w1,
                       const Tensor& w2, const NsaConfig& cfg) {
  detail::check_floating(op, x, "x");
  check_floating_same(op, x, {{&pos_emb, "pos_emb"}, {&w1, "w1"}, {&w2, "w2"}});
  NSA_CHECK(x.dim() == 4, "[", op, "] expected x [B, T, Hkv, D], got ", x.desc());
  const int64_t dim = x.size(3), block = cfg.cmp_block, n_cmp = nsa_num_cmp_blocks(x.size(1), cfg);
  NSA_CHECK(pos_emb.dim() == 2 && pos_emb.size(0) == block && pos_emb.size(1) == dim, "[", op,
            "] expected pos_emb of shape [", block, ", ", dim, "] (cmp_block, D), got ", pos_emb.desc());
  NSA_CHECK(w1.dim() == 2 && w1.size(1) == block * dim, "[", op, "] expected w1 of shape [hidden, ",
            block * dim, "] (cmp_block·D), got ", w1.desc());
  NSA_CHECK(w2.dim() == 2 && w2.size(1) == w1.size(0), "[", op, "] expected w2 of shape [Dout, ", w1.size(0),
            "] (hidden of w1 ", w1.desc(), "), got ", w2.desc());
  return n_cmp;
}

// Too short for one complete block (or no rows): nothing to compress, and no gradient reaches the weights.
bool compress_is_empty(const Tensor& x, int64_t n_cmp) {
  return n_cmp == 0 || x.size(0) == 0 || x.size(2) == 0;
}

// φ from d-token segments (l = S·d). Block i is segments i … i+S−1, so with w1 split by columns into
// S pieces W1_s [hidden, d·D] (the block offsets s·d … s·d+d−1):
//   w1 · flatten(block_i + pos) = Σ_s W1_s · flatten(segment_{i+s}) + w1 · flatten(pos).
// One GEMM of every segment against the S pieces stacked, Y [B, Nseg, H, S, hidden], then the shifted sum
// over s. x is copied once (to segments side by side per head, the GEMM's rows) instead of gathered into
// l/d overlapping copies; everything after the first GEMM has the size of its output (S·hidden per segment
// and head instead of d·D). Each op keeps x's dtype, as the gather formulation's ops do.
Tensor compress_segments(const Tensor& x, const Tensor& pos_emb, const Tensor& w1, const Tensor& w2,
                         int64_t n_cmp, const NsaConfig& cfg) {
  const int64_t batch = x.size(0), heads = x.size(2), dim = x.size(3), hidden = w1.size(0);
  const int64_t seg = cfg.cmp_stride, parts = cfg.cmp_block / seg, n_seg = n_cmp + parts - 1;
  // The complete segments: floor(T/d) of them, so only a ragged T has a tail to drop (then, with B > 1,
  // reshape copies once more).
  const Tensor head = n_seg * seg == x.size(1) ? x : narrow(x, 1, 0, n_seg * seg);
  const Tensor segments =
      reshape(contiguous(permute(reshape(head, {batch, n_seg, seg, heads, dim}), {0, 1, 3, 2, 4})),
              {batch, n_seg, heads, seg * dim});
  // Row s·hidden + o of the stack is row o of W1_s (a copy of the small weight).
  const Tensor w1_parts =
      reshape(permute(reshape(w1, {hidden, parts, seg * dim}), {1, 0, 2}), {parts * hidden, seg * dim});
  const Tensor y = reshape(linear(segments, w1_parts), {batch, n_seg, heads, parts, hidden});
  // The position embedding is the same in every block: one vector, broadcast over blocks and heads.
  Tensor pre = linear(reshape(pos_emb, {1, cfg.cmp_block * dim}), w1);  // [1, hidden]
  if (parts == 1) return linear(silu(add(pre, reshape(y, {batch, n_cmp, heads, hidden}))), w2);  // l = d
  // The S + 1 terms are summed in f32 (at least) and rounded once, as the gather formulation's GEMM rounds
  // its f32 sum once: bf16 partial sums measurably moved the compressed keys (and near-tie selections). The
  // terms are hidden-sized, so the casts cost little.
  const DType acc = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  pre = to(pre, acc);
  for (int64_t s = 0; s < parts; ++s) pre = add(pre, to(narrow(select(y, 3, s), 1, s, n_cmp), acc));
  return linear(silu(to(pre, x.dtype())), w2);
}

}  // namespace

Tensor nsa_compress(const Tensor& x, const Tensor& pos_emb, const Tensor& w1, const Tensor& w2,
                    const NsaConfig& cfg) {
  const int64_t n_cmp = check_compress("nsa_compress", x, pos_emb, w1, w2, cfg);
  if (compress_is_empty(x, n_cmp))
    return zeros({x.size(0), n_cmp, x.size(2), w2.size(0)}, x.dtype(), x.device());
  // The config check (blocks_of) makes l a multiple of d, which the segment formulation needs.
  return compress_segments(x, pos_emb, w1, w2, n_cmp, cfg);
}

Tensor detail::nsa_compress_gather(const Tensor& x, const Tensor& pos_emb, const Tensor& w1, const Tensor& w2,
                                   const NsaConfig& cfg) {
  const int64_t n_cmp = check_compress("nsa_compress_gather", x, pos_emb, w1, w2, cfg);
  if (compress_is_empty(x, n_cmp))
    return zeros({x.size(0), n_cmp, x.size(2), w2.size(0)}, x.dtype(), x.device());
  const int64_t batch = x.size(0), heads = x.size(2), dim = x.size(3), block = cfg.cmp_block;
  // Token i·d + j of block i, offset j: gathering them gives the (overlapping) blocks side by side.
  std::vector<int64_t> tokens(static_cast<size_t>(n_cmp * block));
  for (int64_t i = 0; i < n_cmp; ++i)
    for (int64_t j = 0; j < block; ++j) tokens[i * block + j] = i * cfg.cmp_stride + j;
  const Tensor index = from_vector<int64_t>(tokens, {n_cmp * block}, DType::i64, x.device());
  Tensor blocks = reshape(index_select(x, 1, index), {batch, n_cmp, block, heads, dim});
  blocks = add(blocks, reshape(pos_emb, {block, 1, dim}));  // intra-block position, the same for all heads
  blocks = reshape(permute(blocks, {0, 1, 3, 2, 4}), {batch, n_cmp, heads, block * dim});
  return linear(silu(linear(blocks, w1)), w2);
}

namespace {

// dq, dk, dv of an attention branch from a backend backward that overwrites all three; with no rows (work
// false) nothing is written, so they are zeros.
template <class Backward>
std::vector<Tensor> qkv_grads(bool work, const Tensor& q, const Tensor& k, const Tensor& v,
                              Backward&& backward) {
  auto grad_like = [work](const Tensor& t) {
    return work ? Tensor::empty(t.shape(), t.dtype(), t.device()) : zeros(t.shape(), t.dtype(), t.device());
  };
  Tensor dq = grad_like(q), dk = grad_like(k), dv = grad_like(v);
  if (work) backward(dq, dk, dv);
  return {dq, dk, dv};
}

}  // namespace

NsaCmpResult nsa_compressed_attention(const Tensor& q, const Tensor& kc, const Tensor& vc,
                                      const NsaConfig& cfg, double scale) {
  const char* op = "nsa_compressed_attention";
  detail::check_floating(op, q, "q");
  check_floating_same(op, q, {{&kc, "kc"}, {&vc, "vc"}});
  const NsaBlocks nb = blocks_of(op, cfg);
  NSA_CHECK(q.dim() == 4, "[", op, "] expected q [B, T, Hq, Dk], got ", q.desc());
  check_attention_shapes(op, q, kc, vc, nsa_num_cmp_blocks(q.size(1), cfg));
  scale = resolve_scale(op, scale, q.size(3));

  const Tensor qc = contiguous(q), kcc = contiguous(kc), vcc = contiguous(vc);
  Tensor out = Tensor::empty({q.size(0), q.size(1), q.size(2), vc.size(3)}, q.dtype(), q.device());
  Tensor lse = new_lse(q);
  const bool work = lse.numel() > 0;
  if (work) backend_for(q.device()).nsa_cmp_attention(out, lse, qc, kcc, vcc, nb, scale);
  autograd::record(
      op, {qc, kcc, vcc}, out,
      [qs = qc.alias(), ks = kcc.alias(), vs = vcc.alias(), os = out.alias(), lse, nb, scale,
       work](std::span<const Tensor> g) {
        return qkv_grads(work, qs, ks, vs, [&](const Tensor& dq, const Tensor& dk, const Tensor& dv) {
          backend_for(qs.device())
              .nsa_cmp_attention_backward(dq, dk, dv, contiguous(g[0]), qs, ks, vs, os, lse, nb, scale);
        });
      });
  return {out, lse};
}

Tensor nsa_select_blocks(const Tensor& q, const Tensor& kc, const Tensor& lse, const NsaConfig& cfg,
                         double scale) {
  const char* op = "nsa_select_blocks";
  detail::check_floating(op, q, "q");
  check_floating_same(op, q, {{&kc, "kc"}});
  detail::check_floating(op, lse, "lse");
  detail::check_same_device(op, q, lse);
  const NsaBlocks nb = blocks_of(op, cfg);
  NSA_CHECK(q.dim() == 4, "[", op, "] expected q [B, T, Hq, Dk], got ", q.desc());
  check_attention_shapes(op, q, kc, kc, nsa_num_cmp_blocks(q.size(1), cfg));
  const DType lse_dtype = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  NSA_CHECK(lse.dtype() == lse_dtype && lse.dim() == 3 && lse.size(0) == q.size(0) &&
                lse.size(1) == q.size(2) && lse.size(2) == q.size(1),
            "[", op, "] expected lse ", dtype_name(lse_dtype), "[", q.size(0), ", ", q.size(2), ", ",
            q.size(1), "] (from nsa_compressed_attention), got ", lse.desc());
  scale = resolve_scale(op, scale, q.size(3));
  Tensor indices = Tensor::empty({q.size(0), q.size(1), kc.size(2), nb.top_n}, DType::i32, q.device());
  if (indices.numel() > 0)
    backend_for(q.device()).nsa_select(indices, contiguous(q), contiguous(kc), contiguous(lse), nb, scale);
  return indices;
}

Tensor nsa_selected_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& indices,
                              const NsaConfig& cfg, double scale) {
  const char* op = "nsa_selected_attention";
  detail::check_floating(op, q, "q");
  check_floating_same(op, q, {{&k, "k"}, {&v, "v"}});
  const NsaBlocks nb = blocks_of(op, cfg);
  NSA_CHECK(q.dim() == 4, "[", op, "] expected q [B, T, Hq, Dk], got ", q.desc());
  check_attention_shapes(op, q, k, v, q.size(1));
  check_indices(op, q, k, indices);
  scale = resolve_scale(op, scale, q.size(3));

  const Tensor qc = contiguous(q), kc = contiguous(k), vc = contiguous(v), ic = contiguous(indices);
  Tensor out = Tensor::empty({q.size(0), q.size(1), q.size(2), v.size(3)}, q.dtype(), q.device());
  Tensor lse = new_lse(q);
  const bool work = lse.numel() > 0;
  if (work) backend_for(q.device()).nsa_slc_attention(out, lse, qc, kc, vc, ic, nb, scale);
  autograd::record(
      op, {qc, kc, vc}, out,
      [qs = qc.alias(), ks = kc.alias(), vs = vc.alias(), os = out.alias(), ic, lse, nb, scale,
       work](std::span<const Tensor> g) {
        return qkv_grads(work, qs, ks, vs, [&](const Tensor& dq, const Tensor& dk, const Tensor& dv) {
          backend_for(qs.device())
              .nsa_slc_attention_backward(dq, dk, dv, contiguous(g[0]), qs, ks, vs, ic, os, lse, nb, scale);
        });
      });
  return out;
}

namespace {
// The checks both forms of nsa_attention make before anything runs: q, the gate logits, the geometry.
NsaBlocks check_layer_inputs(const char* op, const NsaBranchInputs& in, const NsaConfig& cfg) {
  detail::check_floating(op, in.q, "q");
  detail::check_floating(op, in.gate_logits, "gate_logits");
  const NsaBlocks nb = blocks_of(op, cfg);
  NSA_CHECK(in.q.dim() == 4, "[", op, "] expected q [B, T, Hq, Dk], got ", in.q.desc());
  const Tensor& g = in.gate_logits;
  NSA_CHECK(g.dim() == 4 && g.size(0) == in.q.size(0) && g.size(1) == in.q.size(1) &&
                g.size(2) == in.q.size(2) && g.size(3) == 3,
            "[", op, "] expected gate_logits of shape [", in.q.size(0), ", ", in.q.size(1), ", ",
            in.q.size(2), ", 3] (cmp, slc, win), got ", g.desc());
  NSA_CHECK(cfg.window >= 0, "[", op, "] expected window >= 0 (0: unlimited), got ", cfg.window);
  return nb;
}
}  // namespace

// The branches and the gate as one autograd node (φ keeps its own): the backward runs the gate's first, which
// also gives the row sums rowsum(dO_c ∘ O_c) every branch backward needs (on CUDA; the kernels would
// otherwise read dO_c and O_c once more for them), then the three branches, the second and third adding into
// the first one's dq instead of three dq tensors that the engine sums. The maths is that of the composed ops
// (detail::nsa_attention_composed), which the tests compare it with.
Tensor nsa_attention(const NsaBranchInputs& in, const NsaConfig& cfg, double scale) {
  const char* op = "nsa_attention";
  const NsaBlocks nb = check_layer_inputs(op, in, cfg);
  const Tensor& g = in.gate_logits;
  const Tensor& q = in.q;
  check_floating_same(op, q,
                      {{&in.k_slc, "k_slc"},
                       {&in.v_slc, "v_slc"},
                       {&in.k_win, "k_win"},
                       {&in.v_win, "v_win"},
                       {&g, "gate_logits"}});
  const int64_t T = q.size(1);
  check_attention_shapes(op, q, in.k_slc, in.v_slc, T);
  check_attention_shapes(op, q, in.k_win, in.v_win, T);
  const int64_t dim_v = in.v_win.size(3);
  // No rows or no value columns: the composed ops handle the empty cases.
  if (q.numel() == 0 || dim_v == 0) return detail::nsa_attention_composed(in, cfg, scale);
  scale = resolve_scale(op, scale, q.size(3));

  const Tensor kc = nsa_compress(in.k_cmp, in.cmp_pos_k, in.cmp_w1_k, in.cmp_w2_k, cfg);
  const Tensor vc = nsa_compress(in.v_cmp, in.cmp_pos_v, in.cmp_w1_v, in.cmp_w2_v, cfg);
  check_floating_same(op, q, {{&kc, "kc"}, {&vc, "vc"}});
  check_attention_shapes(op, q, kc, vc, nsa_num_cmp_blocks(T, cfg));
  NSA_CHECK(vc.size(3) == dim_v && in.v_slc.size(3) == dim_v, "[", op,
            "] expected one value head dim for the three branches, got ", vc.desc(), ", ", in.v_slc.desc(),
            ", ", in.v_win.desc());

  const Tensor qc = contiguous(q), kcc = contiguous(kc), vcc = contiguous(vc);
  const Tensor ksc = contiguous(in.k_slc), vsc = contiguous(in.v_slc);
  const Tensor kwc = contiguous(in.k_win), vwc = contiguous(in.v_win), gc = contiguous(g);
  Backend& be = backend_for(q.device());
  const Dims out_shape{q.size(0), T, q.size(2), dim_v};
  auto new_out = [&] { return Tensor::empty(out_shape, q.dtype(), q.device()); };
  const Tensor o_cmp = new_out(), lse_cmp = new_lse(q);
  be.nsa_cmp_attention(o_cmp, lse_cmp, qc, kcc, vcc, nb, scale);
  Tensor indices;
  if (in.slc_indices.defined()) {
    check_indices(op, q, in.k_slc, in.slc_indices);
    indices = contiguous(in.slc_indices);
  } else {
    indices = nsa_select_blocks(qc, kcc, lse_cmp, cfg, scale);
  }
  const Tensor o_slc = new_out(), lse_slc = new_lse(q);
  be.nsa_slc_attention(o_slc, lse_slc, qc, ksc, vsc, indices, nb, scale);
  const Tensor o_win = new_out(), lse_win = new_lse(q);
  be.attention_forward(o_win, lse_win, qc, kwc, vwc, scale, cfg.window);
  Tensor out = new_out();
  be.nsa_gate_forward(out, gc, o_cmp, o_slc, o_win);

  autograd::record(
      op, {qc, kcc, vcc, ksc, vsc, kwc, vwc, gc}, out,
      [qs = qc.alias(), kcs = kcc.alias(), vcs = vcc.alias(), kss = ksc.alias(), vss = vsc.alias(),
       kws = kwc.alias(), vws = vwc.alias(), gs = gc.alias(), o_cmp, o_slc, o_win, lse_cmp, lse_slc, lse_win,
       indices, nb, scale, window = cfg.window](std::span<const Tensor> grads) {
        Backend& be = backend_for(qs.device());
        auto like = [](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); };
        const Tensor dout = contiguous(grads[0]);
        Tensor d_logits = like(gs), d_cmp = like(o_cmp), d_slc = like(o_slc), d_win = like(o_win);
        // The row sums from the gate where kernels take them: the CUDA tensor-core paths (bf16).
        const bool sums = qs.device().is_cuda() && qs.dtype() == DType::bf16;
        const int64_t B = qs.size(0), T = qs.size(1), Hq = qs.size(2);
        const Tensor deltas = sums ? Tensor::empty({3, B, Hq, T}, DType::f32, qs.device()) : Tensor();
        be.nsa_gate_backward(d_logits, d_cmp, d_slc, d_win, dout, gs, o_cmp, o_slc, o_win,
                             sums ? &deltas : nullptr);
        auto delta_of = [&](int c) { return sums ? reshape(narrow(deltas, 0, c, 1), {B, Hq, T}) : Tensor(); };
        const Tensor delta_cmp = delta_of(0), delta_slc = delta_of(1), delta_win = delta_of(2);
        auto options = [&](const Tensor& delta, bool accumulate) {
          return AttentionGradOptions{sums ? &delta : nullptr, accumulate};
        };
        Tensor dq = like(qs), dkc = like(kcs), dvc = like(vcs), dks = like(kss), dvs = like(vss),
               dkw = like(kws), dvw = like(vws);
        be.nsa_cmp_attention_backward(dq, dkc, dvc, d_cmp, qs, kcs, vcs, o_cmp, lse_cmp, nb, scale,
                                      options(delta_cmp, false));
        be.nsa_slc_attention_backward(dq, dks, dvs, d_slc, qs, kss, vss, indices, o_slc, lse_slc, nb, scale,
                                      options(delta_slc, true));
        be.attention_backward(dq, dkw, dvw, d_win, qs, kws, vws, o_win, lse_win, scale, window,
                              options(delta_win, true));
        return std::vector<Tensor>{dq, dkc, dvc, dks, dvs, dkw, dvw, d_logits};
      });
  return out;
}

Tensor detail::nsa_attention_composed(const NsaBranchInputs& in, const NsaConfig& cfg, double scale) {
  const char* op = "nsa_attention";
  check_layer_inputs(op, in, cfg);
  const Tensor& g = in.gate_logits;
  scale = resolve_scale(op, scale, in.q.size(3));

  const Tensor kc = nsa_compress(in.k_cmp, in.cmp_pos_k, in.cmp_w1_k, in.cmp_w2_k, cfg);
  const Tensor vc = nsa_compress(in.v_cmp, in.cmp_pos_v, in.cmp_w1_v, in.cmp_w2_v, cfg);
  const NsaCmpResult cmp = nsa_compressed_attention(in.q, kc, vc, cfg, scale);
  const Tensor indices =
      in.slc_indices.defined() ? in.slc_indices : nsa_select_blocks(in.q, kc, cmp.lse, cfg, scale);
  const Tensor o_slc = nsa_selected_attention(in.q, in.k_slc, in.v_slc, indices, cfg, scale);
  const Tensor o_win = attention(in.q, in.k_win, in.v_win, scale, cfg.window);
  return nsa_gate_combine(g, cmp.out, o_slc, o_win);
}

Tensor nsa_gate_combine(const Tensor& gate_logits, const Tensor& o_cmp, const Tensor& o_slc,
                        const Tensor& o_win) {
  const char* op = "nsa_gate_combine";
  detail::check_floating(op, gate_logits, "gate_logits");
  check_floating_same(op, gate_logits, {{&o_cmp, "o_cmp"}, {&o_slc, "o_slc"}, {&o_win, "o_win"}});
  NSA_CHECK(o_cmp.dim() == 4 && o_slc.shape() == o_cmp.shape() && o_win.shape() == o_cmp.shape(), "[", op,
            "] expected o_cmp, o_slc, o_win of one shape [B, T, H, Dv], got ", o_cmp.desc(), ", ",
            o_slc.desc(), ", ", o_win.desc());
  NSA_CHECK(gate_logits.dim() == 4 && gate_logits.size(0) == o_cmp.size(0) &&
                gate_logits.size(1) == o_cmp.size(1) && gate_logits.size(2) == o_cmp.size(2) &&
                gate_logits.size(3) == 3,
            "[", op, "] expected gate_logits of shape [", o_cmp.size(0), ", ", o_cmp.size(1), ", ",
            o_cmp.size(2), ", 3] (cmp, slc, win), got ", gate_logits.desc());
  const Tensor gc = contiguous(gate_logits), cc = contiguous(o_cmp), sc = contiguous(o_slc),
               wc = contiguous(o_win);
  Tensor out = Tensor::empty(o_cmp.shape(), o_cmp.dtype(), o_cmp.device());
  if (out.numel() > 0) backend_for(out.device()).nsa_gate_forward(out, gc, cc, sc, wc);
  autograd::record(
      op, {gc, cc, sc, wc}, out,
      [gs = gc.alias(), cs = cc.alias(), ss = sc.alias(), ws = wc.alias()](std::span<const Tensor> g) {
        // Every element is overwritten (d_logits too when Dv = 0: an empty sum).
        auto grad_like = [](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); };
        Tensor dg = grad_like(gs), dc = grad_like(cs), ds = grad_like(ss), dw = grad_like(ws);
        if (gs.numel() > 0)
          backend_for(gs.device()).nsa_gate_backward(dg, dc, ds, dw, contiguous(g[0]), gs, cs, ss, ws);
        return std::vector<Tensor>{dg, dc, ds, dw};
      });
  return out;
}

}  // namespace nsa
