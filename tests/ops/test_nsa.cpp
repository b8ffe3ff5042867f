// Native Sparse Attention ops (ops/nsa.h) on the CPU reference: values against references composed of
// other ops (matmul + mask + softmax) or written as plain loops here, hand-checked selections, f64
// finite-difference gradients, and the full-attention limit (every block selected, window >= T).
//
// Small block sizes (l = 8, d = 4, l' = 16) and ragged lengths (T = 1, 15, 33, 77, 130: not multiples of
// any block size) with GQA groups of 1, 2 and 4 query heads per KV head; Dk != Dv everywhere.
#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>

#include "ops/backend.h"
#include "test_util.h"

namespace nsa::test {
namespace {

constexpr int64_t kDimK = 5, kDimV = 3;

NsaConfig small_config() {
  NsaConfig cfg;
  cfg.cmp_block = 8;
  cfg.cmp_stride = 4;
  cfg.slc_block = 16;
  cfg.slc_top_n = 3;
  cfg.slc_init_blocks = 1;
  cfg.slc_local_blocks = 1;  // one slot left to the importance ranking
  cfg.window = 16;
  return cfg;
}

struct Case {
  int64_t seq, heads_q, heads_kv;
};

// Every length with every group size (1, 2, 4).
std::vector<Case> ragged_cases() {
  std::vector<Case> cases;
  for (int64_t seq : {1, 15, 33, 77, 130})
    for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{2, 2}, {4, 2}, {4, 1}})
      cases.push_back({seq, hq, hkv});
  return cases;
}

std::string name(const Case& c) {
  return "T=" + std::to_string(c.seq) + " Hq=" + std::to_string(c.heads_q) +
         " Hkv=" + std::to_string(c.heads_kv);
}

Tensor random(const Dims& shape, Generator& gen, double std = 1.0) {
  Tensor t = randn(shape, DType::f64, Device::cpu(), &gen);
  return std == 1.0 ? t : mul_scalar(t, std);
}

Tensor leaf(const Tensor& t) { return detach(contiguous(t)).set_requires_grad(true); }

// Softmax attention where query (b, h, t) sees key s iff visible(b, h, t, s), composed of existing ops:
// k and v are repeated to the query heads, scores = scale · q·kᵀ, masked by −1e300 (not −inf, so that a row
// with no visible key stays finite), softmax, rows with no visible key zeroed, times v. Also returns the
// probabilities [B, Hq, T, S] and lse [B, Hq, T] (−inf for empty rows).
struct Reference {
  Tensor out, probs, lse;
};

Reference masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                           const std::function<bool(int64_t, int64_t, int64_t, int64_t)>& visible) {
  const int64_t batch = q.size(0), seq = q.size(1), heads_q = q.size(2), keys = k.size(1);
  const int64_t group = heads_q / k.size(2);
  std::vector<int64_t> head_of(static_cast<size_t>(heads_q));
  for (int64_t h = 0; h < heads_q; ++h) head_of[h] = h / group;
  const Tensor map = from_vector<int64_t>(head_of, {heads_q});
  auto by_head = [&](const Tensor& x, int64_t rows) {  // [B, rows, H, D] -> [B·Hq, rows, D]
    return reshape(contiguous(permute(x, {0, 2, 1, 3})), {batch * heads_q, rows, x.size(3)});
  };
  const Tensor qh = by_head(q, seq), kh = by_head(index_select(k, 2, map), keys);
  const Tensor vh = by_head(index_select(v, 2, map), keys);
  std::vector<double> mask(static_cast<size_t>(batch * heads_q * seq * keys));
  std::vector<double> valid(static_cast<size_t>(batch * heads_q * seq), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads_q; ++h)
      for (int64_t t = 0; t < seq; ++t)
        for (int64_t s = 0; s < keys; ++s) {
          const bool vis = visible(b, h, t, s);
          mask[((b * heads_q + h) * seq + t) * keys + s] = vis ? 0.0 : -1e300;
          if (vis) valid[(b * heads_q + h) * seq + t] = 1.0;
        }
  const Tensor scores = add(mul_scalar(matmul(qh, kh, false, true), scale),
                            from_vector<double>(mask, {batch * heads_q, seq, keys}));
  const Tensor probs = mul(softmax(scores, -1), from_vector<double>(valid, {batch * heads_q, seq, 1}));
  const Tensor out = permute(reshape(matmul(probs, vh), {batch, heads_q, seq, v.size(3)}), {0, 2, 1, 3});
  const Tensor lse = reshape(log(sum(exp(scores), {-1})), {batch, heads_q, seq});
  return {contiguous(out), reshape(probs, {batch, heads_q, seq, keys}), lse};
}

Reference compressed_reference(const Tensor& q, const Tensor& kc, const Tensor& vc, const NsaConfig& cfg,
                               double scale) {
  return masked_attention(q, kc, vc, scale, [&](int64_t, int64_t, int64_t t, int64_t i) {
    return i * cfg.cmp_stride + cfg.cmp_block - 1 <= t;
  });
}

Reference selected_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& indices,
                             const NsaConfig& cfg, double scale) {
  const std::vector<int64_t> idx = to_vector<int64_t>(indices);
  const int64_t seq = q.size(1), heads_kv = k.size(2), group = q.size(2) / heads_kv, n = indices.size(3);
  return masked_attention(q, k, v, scale, [&](int64_t b, int64_t h, int64_t t, int64_t s) {
    if (s > t) return false;
    const int64_t* row = &idx[((b * seq + t) * heads_kv + h / group) * n];
    return std::find(row, row + n, s / cfg.slc_block) != row + n;
  });
}

// The selection written from the paper's formulas: eq. 9 as its double sum over m < l'/d and n < l/d, with
// 0-based blocks: selection block j holds the d-segments (l'/d)·j + m, and compressed block i covers the
// segments i .. i + l/d − 1, so the blocks covering segment (l'/d)·j + m are (l'/d)·j + m − n. Eq. 10 sums
// over the group; then the forced blocks and the top-n by (importance, lower index).
std::vector<int64_t> selection_oracle(const Tensor& probs /*[B, Hq, T, Nc]*/, int64_t heads_kv,
                                      const NsaConfig& cfg) {
  const int64_t batch = probs.size(0), heads_q = probs.size(1), seq = probs.size(2), n_cmp = probs.size(3);
  const int64_t group = heads_q / heads_kv, n_slc = (seq + cfg.slc_block - 1) / cfg.slc_block;
  const int64_t segs = cfg.slc_block / cfg.cmp_stride, covers = cfg.cmp_block / cfg.cmp_stride;
  const std::vector<double> p = to_vector<double>(probs);
  std::vector<int64_t> out;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t g = 0; g < heads_kv; ++g) {
        std::vector<double> imp(static_cast<size_t>(n_slc), 0.0);
        for (int64_t j = 0; j < n_slc; ++j)
          for (int64_t h = g * group; h < (g + 1) * group; ++h)
            for (int64_t m = 0; m < segs; ++m)
              for (int64_t nn = 0; nn < covers; ++nn) {
                const int64_t i = segs * j + m - nn;
                if (i >= 0 && i < n_cmp) imp[j] += p[((b * heads_q + h) * seq + t) * n_cmp + i];
              }
        const int64_t current = t / cfg.slc_block;
        std::vector<int64_t> chosen, candidates;
        for (int64_t j = 0; j <= current; ++j) {
          const bool forced = j < cfg.slc_init_blocks || j > current - cfg.slc_local_blocks;
          (forced ? chosen : candidates).push_back(j);
        }
        std::sort(candidates.begin(), candidates.end(),
                  [&](int64_t a, int64_t c) { return imp[a] != imp[c] ? imp[a] > imp[c] : a < c; });
        for (int64_t j : candidates)
          if (static_cast<int64_t>(chosen.size()) < cfg.slc_top_n) chosen.push_back(j);
        std::sort(chosen.begin(), chosen.end());
        chosen.resize(static_cast<size_t>(cfg.slc_top_n), -1);
        out.insert(out.end(), chosen.begin(), chosen.end());
      }
  return out;
}

// φ as plain loops: out[b, i, h] = w2 · silu(w1 · flatten(x[b, i·d : i·d + l, h] + pos)).
std::vector<double> compress_oracle(const Tensor& x, const Tensor& pos, const Tensor& w1, const Tensor& w2,
                                    const NsaConfig& cfg) {
  const int64_t batch = x.size(0), seq = x.size(1), heads = x.size(2), dim = x.size(3);
  const int64_t hidden = w1.size(0), dout = w2.size(0), l = cfg.cmp_block;
  const int64_t n_cmp = seq >= l ? (seq - l) / cfg.cmp_stride + 1 : 0;
  const std::vector<double> xv = to_vector<double>(x), pv = to_vector<double>(pos);
  const std::vector<double> a = to_vector<double>(w1), c = to_vector<double>(w2);
  std::vector<double> out;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n_cmp; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> flat;
        for (int64_t j = 0; j < l; ++j)
          for (int64_t e = 0; e < dim; ++e)
            flat.push_back(xv[((b * seq + i * cfg.cmp_stride + j) * heads + h) * dim + e] + pv[j * dim + e]);
        std::vector<double> hid(static_cast<size_t>(hidden));
        for (int64_t r = 0; r < hidden; ++r) {
          double z = 0;
          for (int64_t e = 0; e < l * dim; ++e) z += a[r * l * dim + e] * flat[e];
          hid[r] = z / (1 + std::exp(-z));
        }
        for (int64_t o = 0; o < dout; ++o) {
          double z = 0;
          for (int64_t r = 0; r < hidden; ++r) z += c[o * hidden + r] * hid[r];
          out.push_back(z);
        }
      }
  return out;
}

struct Qkv {
  Tensor q, k, v;
};

Qkv random_qkv(const Case& c, int64_t batch, int64_t keys, Generator& gen) {
  return {random({batch, c.seq, c.heads_q, kDimK}, gen), random({batch, keys, c.heads_kv, kDimK}, gen),
          random({batch, keys, c.heads_kv, kDimV}, gen)};
}

// ---------------------------------------------------------------- compression φ

TEST(NsaCompress, BlockCountsAndValues) {
  const NsaConfig cfg = small_config();
  EXPECT_EQ(nsa_num_cmp_blocks(1, cfg), 0);
  EXPECT_EQ(nsa_num_cmp_blocks(7, cfg), 0);
  EXPECT_EQ(nsa_num_cmp_blocks(8, cfg), 1);
  EXPECT_EQ(nsa_num_cmp_blocks(11, cfg), 1);
  EXPECT_EQ(nsa_num_cmp_blocks(12, cfg), 2);
  EXPECT_EQ(nsa_num_cmp_blocks(130, cfg), 31);  // floor(122 / 4) + 1
  EXPECT_EQ(nsa_num_slc_blocks(1, cfg), 1);
  EXPECT_EQ(nsa_num_slc_blocks(16, cfg), 1);
  EXPECT_EQ(nsa_num_slc_blocks(130, cfg), 9);
  Generator gen(11);
  for (int64_t seq : {1, 7, 8, 15, 33, 77}) {
    const Tensor x = random({2, seq, 3, kDimK}, gen), pos = random({8, kDimK}, gen);
    const Tensor w1 = random({6, 8 * kDimK}, gen, 0.3), w2 = random({kDimV, 6}, gen, 0.3);
    const Tensor y = nsa_compress(x, pos, w1, w2, cfg);
    const int64_t n_cmp = nsa_num_cmp_blocks(seq, cfg);
    EXPECT_EQ(y.shape(), Dims({2, n_cmp, 3, kDimV})) << y.desc();
    if (n_cmp == 0) continue;
    const Tensor ref = from_vector<double>(compress_oracle(x, pos, w1, w2, cfg), y.shape());
    const double err = rel_error(y, ref);
    std::printf("[nsa_compress] T=%-3lld rel_err=%.2e\n", static_cast<long long>(seq), err);
    EXPECT_LT(err, 1e-13);
  }
}

TEST(NsaCompress, GradCheck) {
  const NsaConfig cfg = small_config();
  Generator gen(12);
  for (int64_t seq : {8, 23}) {  // one block; several overlapping ones with a ragged tail
    std::vector<Tensor> in = {leaf(random({2, seq, 2, 3}, gen)), leaf(random({8, 3}, gen)),
                              leaf(random({5, 24}, gen, 0.3)), leaf(random({4, 5}, gen, 0.3))};
    std::string report;
    const double err = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return std::vector<Tensor>{nsa_compress(t[0], t[1], t[2], t[3], cfg)};
        },
        in, &report);
    std::printf("[gradcheck] nsa_compress T=%lld%s\n", static_cast<long long>(seq), report.c_str());
    EXPECT_LT(err, 1e-6) << report;
  }
}

// nsa_compress sums shifted GEMMs of d-token segments; detail::nsa_compress_gather gathers the blocks (the
// definition). Both, forward and backward, on geometries l = d, 2d, 3d, 4d and lengths that are exact
// multiples of d, ragged, exactly l, and short of l.
struct CmpGeometry {
  int64_t block, stride, batch, heads;
  std::vector<int64_t> seqs;
};

std::vector<CmpGeometry> cmp_geometries() {
  return {{8, 4, 2, 3, {8, 11, 32, 37}}, {16, 4, 2, 3, {15, 16, 19, 40, 42}},
          {4, 4, 2, 3, {3, 4, 9, 24}},   {6, 2, 2, 3, {6, 7, 21}},
          {8, 4, 1, 3, {8, 30}},         {8, 4, 2, 1, {29, 32}}};
}

// out, then the gradients of x, pos_emb, w1, w2 for the upstream gradient `dout`.
using CompressFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const NsaConfig&);
std::vector<Tensor> compress_with_grads(CompressFn fn, const std::vector<Tensor>& in, const Tensor& dout,
                                        const NsaConfig& cfg) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : in) leaves.push_back(leaf(t));
  const Tensor out = fn(leaves[0], leaves[1], leaves[2], leaves[3], cfg);
  std::vector<Tensor> res = {out};
  if (out.numel() == 0) return res;
  backward(out, dout);
  for (const Tensor& t : leaves) res.push_back(t.grad());
  return res;
}

TEST(NsaCompress, SegmentsMatchGather) {
  Generator gen(13);
  for (const CmpGeometry& g : cmp_geometries()) {
    NsaConfig cfg = small_config();
    cfg.cmp_block = g.block;
    cfg.cmp_stride = g.stride;
    for (int64_t seq : g.seqs) {
      const int64_t hidden = 6, n_cmp = nsa_num_cmp_blocks(seq, cfg);
      const std::vector<Tensor> in = {
          random({g.batch, seq, g.heads, kDimK}, gen), random({g.block, kDimK}, gen),
          random({hidden, g.block * kDimK}, gen, 0.3), random({kDimV, hidden}, gen, 0.3)};
      const Tensor dout = random({g.batch, n_cmp, g.heads, kDimV}, gen);
      for (DType dtype : {DType::f64, DType::f32}) {
        std::vector<Tensor> cast;
        for (const Tensor& t : in) cast.push_back(to(t, dtype));
        const std::vector<Tensor> a = compress_with_grads(&nsa_compress, cast, to(dout, dtype), cfg);
        const std::vector<Tensor> b =
            compress_with_grads(&detail::nsa_compress_gather, cast, to(dout, dtype), cfg);
        ASSERT_EQ(a.size(), b.size());
        EXPECT_EQ(a[0].shape(), Dims({g.batch, n_cmp, g.heads, kDimV})) << a[0].desc();
        EXPECT_EQ(a[0].dtype(), dtype);
        const double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
        const char* names[] = {"out", "dx", "dpos", "dw1", "dw2"};
        std::string line;
        for (size_t i = 0; i < a.size(); ++i) {
          ASSERT_TRUE(a[i].defined() && b[i].defined()) << names[i];
          ASSERT_EQ(a[i].shape(), b[i].shape()) << names[i];
          const double err = rel_error(a[i], b[i]);
          char buf[32];
          std::snprintf(buf, sizeof buf, " %s=%.2e", names[i], err);
          line += buf;
          EXPECT_LT(err, tol) << "l=" << g.block << " d=" << g.stride << " T=" << seq << " " << names[i];
        }
        std::printf("[nsa_compress vs gather] %s l=%-2lld d=%lld B=%lld H=%lld T=%-3lld%s\n",
                    dtype_name(dtype), static_cast<long long>(g.block), static_cast<long long>(g.stride),
                    static_cast<long long>(g.batch), static_cast<long long>(g.heads),
                    static_cast<long long>(seq), line.c_str());
      }
    }
  }
}

// In bf16 the segment path rounds differently (the GEMM's S partial sums and the position term are rounded
// before they are added); its error against f64 must stay on the gather path's scale. Paper geometry
// (l = 32, d = 16), small heads.
TEST(NsaCompress, SegmentsBf16ErrorLikeGather) {
  Generator gen(15);
  NsaConfig cfg = small_config();
  cfg.cmp_block = 32;
  cfg.cmp_stride = 16;
  const int64_t dim = 16, hidden = 16, seq = 200;
  const std::vector<Tensor> in = {random({2, seq, 2, dim}, gen), random({32, dim}, gen, 0.3),
                                  random({hidden, 32 * dim}, gen, 0.05), random({dim, hidden}, gen, 0.25)};
  const Tensor dout = random({2, nsa_num_cmp_blocks(seq, cfg), 2, dim}, gen);
  const std::vector<Tensor> ref = compress_with_grads(&nsa_compress, in, dout, cfg);
  std::vector<Tensor> low;
  for (const Tensor& t : in) low.push_back(to(t, DType::bf16));
  const std::vector<Tensor> a = compress_with_grads(&nsa_compress, low, to(dout, DType::bf16), cfg);
  const std::vector<Tensor> b =
      compress_with_grads(&detail::nsa_compress_gather, low, to(dout, DType::bf16), cfg);
  const char* names[] = {"out", "dx", "dpos", "dw1", "dw2"};
  for (size_t i = 0; i < ref.size(); ++i) {
    const double ea = rel_error(to(a[i], DType::f64), ref[i]), eb = rel_error(to(b[i], DType::f64), ref[i]);
    std::printf("[nsa_compress bf16 vs f64] %-4s segments=%.2e gather=%.2e\n", names[i], ea, eb);
    EXPECT_LT(ea, std::max(2 * eb, 1e-2)) << names[i];
  }
}

TEST(NsaCompress, SegmentsGradCheck) {
  Generator gen(14);
  for (auto [block, stride, seq] :
       {std::tuple<int64_t, int64_t, int64_t>{16, 4, 27}, {4, 4, 13}, {8, 4, 16}}) {
    NsaConfig cfg = small_config();
    cfg.cmp_block = block;
    cfg.cmp_stride = stride;
    std::vector<Tensor> in = {leaf(random({2, seq, 3, 3}, gen)), leaf(random({block, 3}, gen)),
                              leaf(random({5, block * 3}, gen, 0.3)), leaf(random({4, 5}, gen, 0.3))};
    std::string report;
    const double err = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return std::vector<Tensor>{nsa_compress(t[0], t[1], t[2], t[3], cfg)};
        },
        in, &report);
    std::printf("[gradcheck] nsa_compress l=%lld d=%lld T=%lld%s\n", static_cast<long long>(block),
                static_cast<long long>(stride), static_cast<long long>(seq), report.c_str());
    EXPECT_LT(err, 1e-6) << report;
  }
}

// ---------------------------------------------------------------- compressed attention

TEST(NsaCompressedAttention, MatchesComposedReference) {
  const NsaConfig cfg = small_config();
  Generator gen(21);
  for (const Case& c : ragged_cases()) {
    const int64_t n_cmp = nsa_num_cmp_blocks(c.seq, cfg);
    const Qkv x = random_qkv(c, 2, n_cmp, gen);
    const double scale = 0.7;
    const NsaCmpResult r = nsa_compressed_attention(x.q, x.k, x.v, cfg, scale);
    ASSERT_EQ(r.out.shape(), Dims({2, c.seq, c.heads_q, kDimV}));
    ASSERT_EQ(r.lse.shape(), Dims({2, c.heads_q, c.seq}));
    // Queries before the first complete block (t < l − 1) see nothing: out 0, lse −inf.
    const std::vector<double> out = to_vector<double>(r.out), lse = to_vector<double>(r.lse);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = 0; t < std::min<int64_t>(c.seq, cfg.cmp_block - 1); ++t)
        for (int64_t h = 0; h < c.heads_q; ++h) {
          for (int64_t e = 0; e < kDimV; ++e)
            EXPECT_EQ(out[((b * c.seq + t) * c.heads_q + h) * kDimV + e], 0.0);
          EXPECT_EQ(lse[(b * c.heads_q + h) * c.seq + t], -INFINITY);
        }
    if (n_cmp == 0) continue;
    const Reference ref = compressed_reference(x.q, x.k, x.v, cfg, scale);
    const int64_t first = cfg.cmp_block - 1;  // the rows checked above are −inf in both
    const double err_out = rel_error(r.out, ref.out);
    const double err_lse =
        rel_error(narrow(r.lse, 2, first, c.seq - first), narrow(ref.lse, 2, first, c.seq - first));
    std::printf("[nsa_cmp] %-18s out rel_err=%.2e lse rel_err=%.2e\n", name(c).c_str(), err_out, err_lse);
    EXPECT_LT(err_out, 1e-13) << name(c);
    EXPECT_LT(err_lse, 1e-13) << name(c);
  }
}

TEST(NsaCompressedAttention, GradCheck) {
  const NsaConfig cfg = small_config();
  Generator gen(22);
  for (const Case& c : {Case{15, 2, 2}, Case{33, 4, 2}, Case{77, 4, 1}}) {
    const Qkv x = random_qkv(c, 2, nsa_num_cmp_blocks(c.seq, cfg), gen);
    std::string report;
    const double err = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return std::vector<Tensor>{nsa_compressed_attention(t[0], t[1], t[2], cfg).out};
        },
        {leaf(x.q), leaf(x.k), leaf(x.v)}, &report);
    std::printf("[gradcheck] nsa_cmp %-18s%s\n", name(c).c_str(), report.c_str());
    EXPECT_LT(err, 1e-6) << name(c) << report;
  }
}

TEST(NsaCompressedAttention, LowerPrecisionsFollowF64) {
  const NsaConfig cfg = small_config();
  Generator gen(23);
  const Case c{77, 4, 2};
  const Qkv x = random_qkv(c, 2, nsa_num_cmp_blocks(c.seq, cfg), gen);
  const Tensor ref = nsa_compressed_attention(x.q, x.k, x.v, cfg).out;
  for (auto [dtype, tol] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 2e-2}}) {
    const Tensor out = nsa_compressed_attention(to(x.q, dtype), to(x.k, dtype), to(x.v, dtype), cfg).out;
    EXPECT_EQ(out.dtype(), dtype);
    const double err = rel_error(to(out, DType::f64), ref);
    std::printf("[nsa_cmp] %s rel_err vs f64=%.2e\n", dtype_name(dtype), err);
    EXPECT_LT(err, tol);
  }
}

// ---------------------------------------------------------------- selection

// p_cmp under control: with kc[i] the i-th unit vector and scale 1, q_t·kc_i = q_t[i], so each head's
// p_cmp is the softmax of the logits we write into q over the visible blocks.
struct HandSelection {
  NsaConfig cfg;
  int64_t seq = 80, heads_q;
  std::vector<double> q;  // [1, T, Hq, Nc]
  explicit HandSelection(int64_t hq) : heads_q(hq) {
    cfg = small_config();
    cfg.slc_top_n = 4;
    cfg.slc_init_blocks = 1;
    cfg.slc_local_blocks = 2;  // the paper's forcing: block 0, the block of t and the one before
    q.assign(static_cast<size_t>(seq * heads_q * n_cmp()), 0.0);
  }
  int64_t n_cmp() const { return nsa_num_cmp_blocks(seq, cfg); }  // 19
  void logit(int64_t t, int64_t h, int64_t i, double value) { q[(t * heads_q + h) * n_cmp() + i] = value; }
  std::vector<int32_t> indices_at(const Tensor& indices, int64_t t) const {
    const std::vector<int32_t> all = to_vector<int32_t>(indices);
    const auto row = all.begin() + t * cfg.slc_top_n;
    return {row, row + cfg.slc_top_n};
  }
  Tensor run() const {
    std::vector<double> eye(static_cast<size_t>(n_cmp() * n_cmp()), 0.0);
    for (int64_t i = 0; i < n_cmp(); ++i) eye[i * n_cmp() + i] = 1.0;
    const Tensor qt = from_vector<double>(q, {1, seq, heads_q, n_cmp()});
    const Tensor kc = from_vector<double>(eye, {1, n_cmp(), 1, n_cmp()});
    const Tensor vc = zeros({1, n_cmp(), 1, 2}, DType::f64);
    const Tensor lse = nsa_compressed_attention(qt, kc, vc, cfg, 1.0).lse;
    const Tensor idx = nsa_select_blocks(qt, kc, lse, cfg, 1.0);
    EXPECT_EQ(idx.dtype(), DType::i32);
    EXPECT_EQ(idx.shape(), Dims({1, seq, 1, cfg.slc_top_n}));
    return idx;
  }
};

using Row = std::vector<int32_t>;

TEST(NsaSelect, HandCheckedForcedBlocksTiesAndEmptySlots) {
  // T = 80: selection blocks 0..4 of 16 tokens; 19 compressed blocks (i covers [4i, 4i + 8)); n = 4 with
  // block 0 and the two most recent blocks forced.
  HandSelection s(1);
  s.logit(79, 0, 9, 10.0);   // cmp block 9 = tokens [36, 44), inside selection block 2
  s.logit(78, 0, 1, 10.0);   // cmp block 1 = [4, 12): block 0, already forced; the free slot goes to the
  s.logit(78, 0, 9, 5.0);    // best of the rest, block 2
  s.logit(77, 0, 17, 10.0);  // cmp block 17 = [68, 76): the local block 4; then block 1 over 2
  s.logit(77, 0, 5, 3.0);    // (cmp block 5 = [20, 28))
  s.logit(64, 0, 5, 10.0);   // t = 64: the first token of block 4; block 1 over 2
  const Tensor idx = s.run();
  EXPECT_EQ(s.indices_at(idx, 79), (Row{0, 2, 3, 4}));
  EXPECT_EQ(s.indices_at(idx, 78), (Row{0, 2, 3, 4}));
  EXPECT_EQ(s.indices_at(idx, 77), (Row{0, 1, 3, 4}));
  EXPECT_EQ(s.indices_at(idx, 64), (Row{0, 1, 3, 4}));
  // Uniform p_cmp at t = 76: blocks 1 and 2 each overlap 8 d-segments' worth of compressed blocks
  // (weights 1, 2, 2, 2, 1), exactly equal importance: the tie goes to the lower index.
  EXPECT_EQ(s.indices_at(idx, 76), (Row{0, 1, 3, 4}));
  // t = 63 (block 3): forced 0, 2, 3; the only other visible block is 1.
  EXPECT_EQ(s.indices_at(idx, 63), (Row{0, 1, 2, 3}));
  // Fewer visible blocks than n: unused slots are −1 (block j is visible iff 16·j <= t).
  EXPECT_EQ(s.indices_at(idx, 47), (Row{0, 1, 2, -1}));
  EXPECT_EQ(s.indices_at(idx, 20), (Row{0, 1, -1, -1}));
  EXPECT_EQ(s.indices_at(idx, 16), (Row{0, 1, -1, -1}));
  EXPECT_EQ(s.indices_at(idx, 15), (Row{0, -1, -1, -1}));
  EXPECT_EQ(s.indices_at(idx, 0), (Row{0, -1, -1, -1}));  // no compressed block visible yet
}

TEST(NsaSelect, GroupSumDecides) {
  // Two query heads share one KV head. Head 0 prefers block 1, head 1 block 2; the one with the sharper
  // preference wins the free slot, in both orders: the group sum decides, not a particular head.
  HandSelection s(2);
  s.logit(79, 0, 5, 12.0);  // head 0: ~all mass on cmp block 5 (block 1): importance ≈ 2.0
  s.logit(79, 1, 9, 6.0);   // head 1: p ≈ 0.96 on cmp block 9 (block 2): importance ≈ 1.93
  s.logit(78, 0, 5, 6.0);
  s.logit(78, 1, 9, 12.0);
  const Tensor idx = s.run();
  EXPECT_EQ(s.indices_at(idx, 79), (Row{0, 1, 3, 4}));
  EXPECT_EQ(s.indices_at(idx, 78), (Row{0, 2, 3, 4}));
}

TEST(NsaSelect, MatchesFormulaOracle) {
  Generator gen(31);
  for (int64_t top_n : {3, 5}) {
    NsaConfig cfg = small_config();
    cfg.slc_top_n = top_n;
    for (const Case& c : ragged_cases()) {
      const int64_t n_cmp = nsa_num_cmp_blocks(c.seq, cfg);
      const Qkv x = random_qkv(c, 2, n_cmp, gen);
      const NsaCmpResult r = nsa_compressed_attention(x.q, x.k, x.v, cfg);
      const Tensor idx = nsa_select_blocks(x.q, x.k, r.lse, cfg);
      ASSERT_EQ(idx.shape(), Dims({2, c.seq, c.heads_kv, top_n}));
      const Tensor probs = n_cmp > 0
                               ? compressed_reference(x.q, x.k, x.v, cfg, 1 / std::sqrt(double(kDimK))).probs
                               : zeros({2, c.heads_q, c.seq, 0}, DType::f64);
      const std::vector<int64_t> expect = selection_oracle(probs, c.heads_kv, cfg);
      const std::vector<int64_t> got = to_vector<int64_t>(idx);
      int64_t mismatches = 0;
      for (size_t i = 0; i < got.size(); ++i) mismatches += got[i] != expect[i];
      EXPECT_EQ(mismatches, 0) << name(c) << " n=" << top_n;
    }
  }
}

// ---------------------------------------------------------------- selected attention

TEST(NsaSelectedAttention, MatchesMaskedReference) {
  const NsaConfig cfg = small_config();
  Generator gen(41);
  for (const Case& c : ragged_cases()) {
    const Qkv x = random_qkv(c, 2, c.seq, gen);
    const Qkv xc = random_qkv(c, 2, nsa_num_cmp_blocks(c.seq, cfg), gen);
    const Tensor idx = nsa_select_blocks(x.q, xc.k, nsa_compressed_attention(x.q, xc.k, xc.v, cfg).lse, cfg);
    const double scale = 0.6;
    const Tensor out = nsa_selected_attention(x.q, x.k, x.v, idx, cfg, scale);
    const Reference ref = selected_reference(x.q, x.k, x.v, idx, cfg, scale);
    const double err = rel_error(out, ref.out);
    std::printf("[nsa_slc] %-18s rel_err=%.2e\n", name(c).c_str(), err);
    EXPECT_LT(err, 1e-13) << name(c);
  }
}

TEST(NsaSelectedAttention, HandPickedIndicesWithEmptySlotsAndFutureBlocks) {
  // Rows with −1 slots, a block beyond t (contributes nothing) and i64 indices; a row with nothing visible
  // gets 0.
  const NsaConfig cfg = small_config();
  Generator gen(42);
  const Case c{40, 2, 1};
  const Qkv x = random_qkv(c, 1, c.seq, gen);
  std::vector<int64_t> idx(static_cast<size_t>(c.seq * 3), -1);
  for (int64_t t = 0; t < c.seq; ++t) {
    idx[t * 3 + 0] = t % 3 == 0 || t >= 32 ? -1 : 2;  // block 2 = [32, 40): in the future for t < 32
    idx[t * 3 + 1] = t / 16;
  }
  idx[5 * 3 + 1] = -1;  // t = 5: only block 2, all future: nothing visible
  const Tensor indices = from_vector<int64_t>(idx, {1, c.seq, 1, 3});
  const Tensor out = nsa_selected_attention(x.q, x.k, x.v, indices, cfg);
  const Reference ref = selected_reference(x.q, x.k, x.v, indices, cfg, 1 / std::sqrt(double(kDimK)));
  const double err = rel_error(out, ref.out);
  std::printf("[nsa_slc] hand-picked rel_err=%.2e\n", err);
  EXPECT_LT(err, 1e-13);
  const std::vector<double> o = to_vector<double>(out);
  for (int64_t e = 0; e < 2 * kDimV; ++e) EXPECT_EQ(o[5 * 2 * kDimV + e], 0.0);
}

TEST(NsaSelectedAttention, GradCheckWithFixedIndices) {
  // The indices come from the selection on random inputs and are then held fixed (they are an input of
  // this op), so finite differences see a smooth function.
  const NsaConfig cfg = small_config();
  Generator gen(43);
  for (const Case& c : {Case{15, 2, 2}, Case{33, 4, 2}, Case{77, 4, 1}}) {
    const Qkv x = random_qkv(c, 1, c.seq, gen);
    const Qkv xc = random_qkv(c, 1, nsa_num_cmp_blocks(c.seq, cfg), gen);
    const Tensor idx = nsa_select_blocks(x.q, xc.k, nsa_compressed_attention(x.q, xc.k, xc.v, cfg).lse, cfg);
    std::string report;
    const double err = gradcheck(
        [&](const std::vector<Tensor>& t) {
          return std::vector<Tensor>{nsa_selected_attention(t[0], t[1], t[2], idx, cfg)};
        },
        {leaf(x.q), leaf(x.k), leaf(x.v)}, &report);
    std::printf("[gradcheck] nsa_slc %-18s%s\n", name(c).c_str(), report.c_str());
    EXPECT_LT(err, 1e-6) << name(c) << report;
  }
}

TEST(NsaSelectedAttention, EveryBlockSelectedIsFullCausalAttention) {
  // With n·l' >= T every visible block is selected, so the selected branch is full causal attention; so is
  // the window branch with w >= T. Values and gradients against the dense op.
  Generator gen(44);
  for (const Case& c : {Case{33, 4, 2}, Case{77, 2, 1}}) {
    NsaConfig cfg = small_config();
    cfg.slc_top_n = nsa_num_slc_blocks(c.seq, cfg);
    cfg.window = c.seq;
    const Qkv x = random_qkv(c, 2, c.seq, gen);
    const Qkv xc = random_qkv(c, 2, nsa_num_cmp_blocks(c.seq, cfg), gen);
    const Tensor idx = nsa_select_blocks(x.q, xc.k, nsa_compressed_attention(x.q, xc.k, xc.v, cfg).lse, cfg);
    std::vector<Tensor> a = {leaf(x.q), leaf(x.k), leaf(x.v)}, b = {leaf(x.q), leaf(x.k), leaf(x.v)},
                        w = {leaf(x.q), leaf(x.k), leaf(x.v)};
    const Tensor o_slc = nsa_selected_attention(a[0], a[1], a[2], idx, cfg);
    const Tensor o_full = attention(b[0], b[1], b[2]);
    const Tensor o_win = attention(w[0], w[1], w[2], 0.0, cfg.window);
    const Tensor dout = random(o_full.shape(), gen);
    backward(sum(mul(o_slc, dout)));
    backward(sum(mul(o_full, dout)));
    backward(sum(mul(o_win, dout)));
    std::printf("[nsa_slc=full] %-18s out %.2e dq %.2e dk %.2e dv %.2e | window out %.2e\n", name(c).c_str(),
                rel_error(o_slc, o_full), rel_error(a[0].grad(), b[0].grad()),
                rel_error(a[1].grad(), b[1].grad()), rel_error(a[2].grad(), b[2].grad()),
                rel_error(o_win, o_full));
    EXPECT_LT(rel_error(o_slc, o_full), 1e-13);
    EXPECT_LT(rel_error(o_win, o_full), 1e-13);
    for (int i = 0; i < 3; ++i) {
      EXPECT_LT(rel_error(a[i].grad(), b[i].grad()), 1e-12) << "input " << i;
      EXPECT_LT(rel_error(w[i].grad(), b[i].grad()), 1e-12) << "input " << i;
    }
  }
}

// ---------------------------------------------------------------- the whole layer

struct Layer {
  std::vector<Tensor>
      t;  // q, k_cmp, v_cmp, k_slc, v_slc, k_win, v_win, gates, pos_k, w1_k, w2_k, pos_v, w1_v, w2_v
  static NsaBranchInputs inputs(const std::vector<Tensor>& t, const Tensor& fixed = Tensor()) {
    return {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], fixed};
  }
};

Layer random_layer(const Case& c, int64_t batch, int64_t hidden, const NsaConfig& cfg, Generator& gen) {
  const int64_t l = cfg.cmp_block;
  const Dims q{batch, c.seq, c.heads_q, kDimK}, k{batch, c.seq, c.heads_kv, kDimK},
      v{batch, c.seq, c.heads_kv, kDimV};
  return {{leaf(random(q, gen)), leaf(random(k, gen)), leaf(random(v, gen)), leaf(random(k, gen)),
           leaf(random(v, gen)), leaf(random(k, gen)), leaf(random(v, gen)),
           leaf(random({batch, c.seq, c.heads_q, 3}, gen)), leaf(random({l, kDimK}, gen)),
           leaf(random({hidden, l * kDimK}, gen, 0.3)), leaf(random({kDimK, hidden}, gen, 0.5)),
           leaf(random({l, kDimV}, gen)), leaf(random({hidden, l * kDimV}, gen, 0.3)),
           leaf(random({kDimV, hidden}, gen, 0.5))}};
}

TEST(NsaAttention, IsTheGatedSumOfTheBranches) {
  const NsaConfig cfg = small_config();
  Generator gen(51);
  for (const Case& c : {Case{1, 2, 1}, Case{33, 4, 2}, Case{77, 4, 1}}) {
    const Layer layer = random_layer(c, 2, 6, cfg, gen);
    const std::vector<Tensor>& t = layer.t;
    const Tensor out = nsa_attention(Layer::inputs(t), cfg);
    ASSERT_EQ(out.shape(), Dims({2, c.seq, c.heads_q, kDimV}));
    // By hand, from the individual ops.
    const Tensor kc = nsa_compress(t[1], t[8], t[9], t[10], cfg),
                 vc = nsa_compress(t[2], t[11], t[12], t[13], cfg);
    const NsaCmpResult cmp = nsa_compressed_attention(t[0], kc, vc, cfg);
    const Tensor idx = nsa_select_blocks(t[0], kc, cmp.lse, cfg);
    const Tensor o_slc = nsa_selected_attention(t[0], t[3], t[4], idx, cfg);
    const Tensor o_win = attention(t[0], t[5], t[6], 0.0, cfg.window);
    const std::vector<double> g = to_vector<double>(t[7]), oc = to_vector<double>(cmp.out),
                              os = to_vector<double>(o_slc), ow = to_vector<double>(o_win);
    std::vector<double> expect(oc.size());
    auto sig = [](double z) { return 1 / (1 + std::exp(-z)); };
    for (size_t i = 0; i < expect.size(); ++i) {
      const size_t row = i / kDimV;
      expect[i] = sig(g[row * 3]) * oc[i] + sig(g[row * 3 + 1]) * os[i] + sig(g[row * 3 + 2]) * ow[i];
    }
    const double err = rel_error(out, from_vector<double>(expect, out.shape()));
    std::printf("[nsa_attention] %-18s rel_err=%.2e\n", name(c).c_str(), err);
    EXPECT_LT(err, 1e-14);
    // Passing the same selection in gives the same result.
    EXPECT_TRUE(equal_values(nsa_attention(Layer::inputs(t, idx), cfg), out));
  }
}

// The fused node (one autograd node for the branches and the gate, dq accumulated across the branches)
// against the composed ops, every input's gradient; once with separate K/V per branch, once with one K and
// one V for all three (the model's separate_kv: false), where a tensor feeds several inputs of the node.
TEST(NsaAttention, FusedNodeMatchesComposedOps) {
  const NsaConfig cfg = small_config();
  Generator gen(54);
  for (const bool shared_kv : {false, true}) {
    const Case c{45, 4, 2};
    const Layer layer = random_layer(c, 2, 5, cfg, gen);
    auto run = [&](bool fused) {
      std::vector<Tensor> t;
      for (const Tensor& x : layer.t) t.push_back(leaf(x));
      NsaBranchInputs in = Layer::inputs(t);
      if (shared_kv) {
        in.k_slc = in.k_win = in.k_cmp;
        in.v_slc = in.v_win = in.v_cmp;
      }
      const Tensor out = fused ? nsa_attention(in, cfg) : detail::nsa_attention_composed(in, cfg);
      Generator g2(7);
      backward(sum(mul(out, random(out.shape(), g2))));
      std::vector<Tensor> result{out};
      for (const Tensor& x : t) result.push_back(x.grad().defined() ? x.grad() : zeros_like(x));
      return result;
    };
    const std::vector<Tensor> a = run(true), b = run(false);
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double err = rel_error(a[i], b[i]);
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-13) << (i == 0 ? std::string("out") : "grad of input " + std::to_string(i - 1))
                            << (shared_kv ? " (shared K/V)" : "");
    }
    std::printf("[nsa_attention] fused vs composed%s: worst rel_err %.2e over out and %zu gradients\n",
                shared_kv ? " (shared K/V)" : "", worst, a.size() - 1);
  }
}

TEST(NsaAttention, GradCheckWithSelectionHeldFixed) {
  // The selection is piecewise constant in q and the compressed keys; a finite-difference step that flips a
  // near-tie would see a jump that no gradient has. So the selection is computed once at the unperturbed
  // point and passed in (slc_indices); the test above shows that this path computes the same function.
  // Gradients reach every input: q through all three branches, the φ weights through the compressed branch.
  const NsaConfig cfg = small_config();
  Generator gen(52);
  const Case c{50, 2, 1};
  const Layer layer = random_layer(c, 1, 4, cfg, gen);
  Tensor idx;
  {
    NoGradGuard no_grad;
    const std::vector<Tensor>& t = layer.t;
    const Tensor kc = nsa_compress(t[1], t[8], t[9], t[10], cfg),
                 vc = nsa_compress(t[2], t[11], t[12], t[13], cfg);
    idx = nsa_select_blocks(t[0], kc, nsa_compressed_attention(t[0], kc, vc, cfg).lse, cfg);
  }
  std::string report;
  const double err = gradcheck(
      [&](const std::vector<Tensor>& t) {
        return std::vector<Tensor>{nsa_attention(Layer::inputs(t, idx), cfg)};
      },
      layer.t, &report);
  std::printf("[gradcheck] nsa_attention fixed selection%s\n", report.c_str());
  EXPECT_LT(err, 1e-6) << report;
}

TEST(NsaAttention, GradCheckWhenSelectionCannotChange) {
  // With n covering every selection block the selection is the same for any input: the whole op, selection
  // included, is smooth.
  NsaConfig cfg = small_config();
  const Case c{37, 4, 2};
  cfg.slc_top_n = nsa_num_slc_blocks(c.seq, cfg);
  Generator gen(53);
  const Layer layer = random_layer(c, 1, 3, cfg, gen);
  std::string report;
  const double err = gradcheck(
      [&](const std::vector<Tensor>& t) { return std::vector<Tensor>{nsa_attention(Layer::inputs(t), cfg)}; },
      layer.t, &report);
  std::printf("[gradcheck] nsa_attention all blocks%s\n", report.c_str());
  EXPECT_LT(err, 1e-6) << report;
}

// ---------------------------------------------------------------- the fused gate (eq. 5)

// The gated sum as nsa_attention composed it before the fused op: sigmoid, narrow, broadcast mul, add.
Tensor composed_gate(const Tensor& g, const Tensor& oc, const Tensor& os, const Tensor& ow) {
  const Tensor s = sigmoid(g);
  return add(add(mul(narrow(s, 3, 0, 1), oc), mul(narrow(s, 3, 1, 1), os)), mul(narrow(s, 3, 2, 1), ow));
}

TEST(NsaGateCombine, MatchesComposedOpsWithGradients) {
  Generator gen(71);
  for (const Dims& shape : {Dims{1, 1, 1, 1}, Dims{2, 33, 3, 5}, Dims{1, 77, 4, 130}}) {
    const int64_t b = shape[0], t = shape[1], h = shape[2], dv = shape[3];
    // Logits with std 4 reach saturated gates; o_slc a transposed view and the logits a narrowed one
    // (non-contiguous inputs).
    const Tensor logits_wide = leaf(random({b, t, h, 5}, gen, 4.0)), os_t = leaf(random({b, t, dv, h}, gen));
    const Tensor logits = narrow(logits_wide, 3, 1, 3), os = transpose(os_t, 2, 3);
    const Tensor oc = leaf(random(shape, gen)), ow = leaf(random(shape, gen));
    const Tensor fused = nsa_gate_combine(logits, oc, os, ow);
    ASSERT_EQ(fused.shape(), shape);
    std::vector<Tensor> copies;
    for (const Tensor& x : {logits, oc, os, ow}) copies.push_back(leaf(x));
    const Tensor composed = composed_gate(copies[0], copies[1], copies[2], copies[3]);
    const double err = rel_error(fused, composed);
    std::printf("[nsa_gate_combine] [%lld, %lld, %lld, %lld] out rel_err=%.2e\n", static_cast<long long>(b),
                static_cast<long long>(t), static_cast<long long>(h), static_cast<long long>(dv), err);
    EXPECT_LT(err, 1e-14);
    const Tensor dout = random(shape, gen);
    backward(fused, dout);
    backward(composed, dout);
    ASSERT_TRUE(logits_wide.grad().defined() && os_t.grad().defined() && oc.grad().defined() &&
                ow.grad().defined());
    const std::vector<Tensor> fused_grads = {narrow(logits_wide.grad(), 3, 1, 3), oc.grad(),
                                             transpose(os_t.grad(), 2, 3), ow.grad()};
    for (size_t i = 0; i < fused_grads.size(); ++i) {
      const double gerr = rel_error(fused_grads[i], copies[i].grad());
      std::printf("[nsa_gate_combine]   grad of input %zu rel_err=%.2e\n", i, gerr);
      EXPECT_LT(gerr, 1e-13) << "input " << i;
    }
  }
}

// The backend's gate backward also hands out each branch's row sums (nsa_attention's fused backward passes
// them to the branch backwards): deltas[c, b, h, t] = Σ_d d_o_c · o_c over the row (b, t, h), in f32 and f64.
TEST(NsaGateCombine, BackwardRowSumsForTheBranches) {
  Generator gen(74);
  const int64_t B = 2, T = 9, H = 3, Dv = 7;
  const Dims shape{B, T, H, Dv};
  const Tensor logits = random({B, T, H, 3}, gen, 2.0), dout = random(shape, gen);
  const Tensor o[3] = {random(shape, gen), random(shape, gen), random(shape, gen)};
  for (const DType delta_type : {DType::f64, DType::f32}) {
    auto empty_like = [](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); };
    Tensor d_logits = empty_like(logits), d[3] = {empty_like(o[0]), empty_like(o[1]), empty_like(o[2])};
    const Tensor deltas = Tensor::empty({3, B, H, T}, delta_type, Device::cpu());
    backend_for(Device::cpu())
        .nsa_gate_backward(d_logits, d[0], d[1], d[2], dout, logits, o[0], o[1], o[2], &deltas);
    const std::vector<double> got = to_vector<double>(to(deltas, Device::cpu(), DType::f64));
    double worst = 0;
    for (int c = 0; c < 3; ++c) {
      const std::vector<double> dc = to_vector<double>(d[c]), oc = to_vector<double>(o[c]);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t h = 0; h < H; ++h) {
            double expect = 0;
            const int64_t row = (b * T + t) * H + h;
            for (int64_t i = 0; i < Dv; ++i) expect += dc[row * Dv + i] * oc[row * Dv + i];
            const double value = got[((c * B + b) * H + h) * T + t];
            worst = std::max(worst, std::abs(value - expect) / std::max(1.0, std::abs(expect)));
          }
    }
    std::printf("[nsa_gate_combine] row sums for the branches (%s): worst error %.2e\n",
                dtype_name(delta_type), worst);
    EXPECT_LT(worst, delta_type == DType::f64 ? 1e-13 : 1e-6);
  }
}

TEST(NsaGateCombine, GradCheck) {
  Generator gen(72);
  for (const Dims& shape : {Dims{1, 6, 2, 3}, Dims{2, 3, 1, 1}}) {
    std::vector<Tensor> in = {leaf(random({shape[0], shape[1], shape[2], 3}, gen, 2.0)),
                              leaf(random(shape, gen)), leaf(random(shape, gen)), leaf(random(shape, gen))};
    std::string report;
    const double err = gradcheck(
        [](const std::vector<Tensor>& x) {
          return std::vector<Tensor>{nsa_gate_combine(x[0], x[1], x[2], x[3])};
        },
        in, &report);
    std::printf("[gradcheck] nsa_gate_combine%s\n", report.c_str());
    EXPECT_LT(err, 1e-6) << report;
  }
}

TEST(NsaGateCombine, LowerPrecisionsFollowF64) {
  // The same (rounded) values in f32 and bf16: one rounding of each output, so errors of the dtype's epsilon.
  Generator gen(73);
  const Dims shape{2, 9, 3, 24};
  for (const auto& [dtype, tol] : {std::pair<DType, double>{DType::f32, 1e-6}, {DType::bf16, 1e-2}}) {
    std::vector<Tensor> f64_in, low_in;
    for (const Dims& s : {Dims{2, 9, 3, 3}, shape, shape, shape}) {
      const Tensor x = to(to(random(s, gen, 2.0), dtype), DType::f64);
      f64_in.push_back(leaf(x));
      low_in.push_back(leaf(to(x, dtype)));
    }
    const Tensor ref = nsa_gate_combine(f64_in[0], f64_in[1], f64_in[2], f64_in[3]);
    const Tensor low = nsa_gate_combine(low_in[0], low_in[1], low_in[2], low_in[3]);
    const Tensor dout = to(to(random(shape, gen), dtype), DType::f64);
    backward(ref, dout);
    backward(low, to(dout, dtype));
    const double err = rel_error(low, ref);
    std::printf("[nsa_gate_combine] %s out rel_err=%.2e\n", dtype_name(dtype), err);
    EXPECT_LT(err, tol);
    for (size_t i = 0; i < 4; ++i) {
      const double gerr = rel_error(low_in[i].grad(), f64_in[i].grad());
      std::printf("[nsa_gate_combine] %s grad of input %zu rel_err=%.2e\n", dtype_name(dtype), i, gerr);
      EXPECT_LT(gerr, tol) << "input " << i;
    }
  }
}

TEST(NsaGateCombine, EmptyHeadDimGivesZeroGateGradient) {
  Generator gen(74);
  const Tensor logits = leaf(random({1, 4, 2, 3}, gen));
  const Tensor o = leaf(random({1, 4, 2, 0}, gen));
  const Tensor out = nsa_gate_combine(logits, o, o, o);
  EXPECT_EQ(out.shape(), Dims({1, 4, 2, 0}));
  backward(out, zeros({1, 4, 2, 0}, DType::f64, Device::cpu()));
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_TRUE(equal_values(logits.grad(), zeros({1, 4, 2, 3}, DType::f64, Device::cpu())));
}

TEST(NsaGateCombine, RejectsBadInput) {
  Generator gen(75);
  const Tensor o = random({1, 4, 2, 3}, gen), g = random({1, 4, 2, 3}, gen);
  EXPECT_NO_THROW(nsa_gate_combine(g, o, o, o));
  EXPECT_THROW(nsa_gate_combine(random({1, 4, 2, 2}, gen), o, o, o), Error);  // two gates
  EXPECT_THROW(nsa_gate_combine(random({1, 4, 3, 3}, gen), o, o, o), Error);  // other heads
  EXPECT_THROW(nsa_gate_combine(g, o, random({1, 4, 2, 4}, gen), o), Error);  // branch shapes differ
  EXPECT_THROW(nsa_gate_combine(g, o, o, to(o, DType::f32)), Error);          // dtypes differ
  EXPECT_THROW(
      nsa_gate_combine(reshape(g, {8, 3}), reshape(o, {8, 3}), reshape(o, {8, 3}), reshape(o, {8, 3})),
      Error);  // not [B, T, H, ...]
}

// ---------------------------------------------------------------- input checks

TEST(Nsa, RejectsBadInput) {
  Generator gen(61);
  const NsaConfig cfg = small_config();
  const Case c{20, 2, 1};
  const Qkv x = random_qkv(c, 1, c.seq, gen);
  const Qkv xc = random_qkv(c, 1, nsa_num_cmp_blocks(c.seq, cfg), gen);
  NsaConfig bad = cfg;
  bad.cmp_block = 6;  // not a multiple of d = 4
  EXPECT_THROW(nsa_compressed_attention(x.q, xc.k, xc.v, bad), Error);
  bad = cfg;
  bad.slc_top_n = 1;  // fewer than the forced blocks
  EXPECT_THROW(nsa_select_blocks(x.q, xc.k, nsa_compressed_attention(x.q, xc.k, xc.v, cfg).lse, bad), Error);
  EXPECT_THROW(nsa_compressed_attention(x.q, x.k, x.v, cfg), Error);  // T keys instead of Nc
  EXPECT_THROW(nsa_compressed_attention(x.q, to(xc.k, DType::f32), xc.v, cfg), Error);
  std::vector<int32_t> v(c.seq * 2, -1);
  for (int64_t t = 0; t < c.seq; ++t) v[t * 2] = 0;
  const Tensor good = from_vector<int32_t>(v, {1, c.seq, 1, 2});
  EXPECT_NO_THROW(nsa_selected_attention(x.q, x.k, x.v, good, cfg));
  v[7] = 2;  // block 2 of a 20-token sequence (blocks 0, 1) is out of range
  EXPECT_THROW(nsa_selected_attention(x.q, x.k, x.v, from_vector<int32_t>(v, {1, c.seq, 1, 2}), cfg), Error);
  v[7] = 0;
  v[6] = 0;  // block 0 twice in one row
  EXPECT_THROW(nsa_selected_attention(x.q, x.k, x.v, from_vector<int32_t>(v, {1, c.seq, 1, 2}), cfg), Error);
  // The φ weights must match the block length and the head dim.
  EXPECT_THROW(
      nsa_compress(x.k, random({7, kDimK}, gen), random({4, 8 * kDimK}, gen), random({kDimK, 4}, gen), cfg),
      Error);
  EXPECT_THROW(
      nsa_compress(x.k, random({8, kDimK}, gen), random({4, 7 * kDimK}, gen), random({kDimK, 4}, gen), cfg),
      Error);
}

}  // namespace
}  // namespace nsa::test
