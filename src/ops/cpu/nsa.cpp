// CPU reference of Native Sparse Attention's own primitives (docs/nsa.md): compressed attention, block
// selection, selected attention, forward and backward, in double.
//
// Both attention branches are "softmax attention of one query row over a list of key rows": the
// compressed branch's list is the visible compressed blocks, the selected branch's the causal tokens of the
// chosen blocks. So one forward and one backward routine serve both, each branch only saying which key
// rows a query sees. Single-threaded, two-pass softmax per row: it exists to be right.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/cpu/attention_math.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/loops.h"
#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

// Sizes of one call. Queries are [B, T, Hq, Dk]; keys/values [B, S, Hkv, D] with S = Nc (compressed
// branch) or T (selected branch).
struct Shape {
  int64_t batch, seq, heads_q, heads_kv, keys, dim_k, dim_v;
  int64_t group() const { return heads_q / heads_kv; }
  int64_t q_row(int64_t b, int64_t t, int64_t h) const { return (b * seq + t) * heads_q + h; }
  int64_t kv_row(int64_t b, int64_t s, int64_t g) const { return (b * keys + s) * heads_kv + g; }
  int64_t lse_at(int64_t b, int64_t h, int64_t t) const { return (b * heads_q + h) * seq + t; }
};

Shape shape_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), k.size(1), q.size(3), v.size(3)};
}

void write_lse(const Tensor& lse, int64_t i, double value) {
  if (lse.dtype() == DType::f64) {
    lse.data<double>()[i] = value;
  } else {
    lse.data<float>()[i] = static_cast<float>(value);
  }
}

// Compressed blocks visible from query t: i·stride + block − 1 <= t, and i < n_cmp.
int64_t visible_cmp_blocks(int64_t t, int64_t n_cmp, const NsaBlocks& nb) {
  if (t < nb.cmp_block - 1) return 0;
  return std::min(n_cmp, (t - nb.cmp_block + 1) / nb.cmp_stride + 1);
}

// keys_of(b, t, g, keys) fills `keys` with the key rows (positions along S) query t of KV head g sees.
template <class T, class KeysOf>
void sparse_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                              const Tensor& v, double scale, KeysOf&& keys_of) {
  const Shape sh = shape_of(q, k, v);
  const std::vector<double> qd = to_doubles<T>(q), kd = to_doubles<T>(k), vd = to_doubles<T>(v);
  std::vector<double> od(static_cast<size_t>(out.numel()), 0.0);
  // Each (batch, KV head) writes only its own heads' rows: split over the pool, bit-identical to one thread.
  parallel_for(sh.batch * sh.heads_kv, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> keys;
    std::vector<double> p;
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / sh.heads_kv, g = bg % sh.heads_kv;
      for (int64_t t = 0; t < sh.seq; ++t) {
        {
          keys.clear();
          keys_of(b, t, g, keys);
          p.resize(keys.size());
          for (int64_t h = g * sh.group(); h < (g + 1) * sh.group(); ++h) {
            const int64_t qi = sh.q_row(b, t, h);
            if (keys.empty()) {  // out stays 0
              write_lse(lse, sh.lse_at(b, h, t), -INFINITY);
              continue;
            }
            double mx = -INFINITY;
            for (size_t s = 0; s < keys.size(); ++s) {
              p[s] = scale * dot(&qd[qi * sh.dim_k], &kd[sh.kv_row(b, keys[s], g) * sh.dim_k], sh.dim_k);
              mx = std::max(mx, p[s]);
            }
            double sum = 0;
            for (double& x : p) sum += (x = std::exp(x - mx));
            for (size_t s = 0; s < keys.size(); ++s)
              axpy(&od[qi * sh.dim_v], p[s] / sum, &vd[sh.kv_row(b, keys[s], g) * sh.dim_v], sh.dim_v);
            write_lse(lse, sh.lse_at(b, h, t), mx + std::log(sum));
          }
        }
      }
    }
  });
  store<T>(out, od);
}

// With P = softmax(scale · q·kᵀ) over the row's keys and O = P·v:
//   dV_s += P_s · dO,  dS_s = P_s · (dO·v_s − dO·O),  dQ += scale · Σ_s dS_s · k_s,  dK_s += scale · dS_s ·
//   q.
template <class T, class KeysOf>
void sparse_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                               const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                               const Tensor& lse, double scale, KeysOf&& keys_of) {
  const Shape sh = shape_of(q, k, v);
  const std::vector<double> qd = to_doubles<T>(q), kd = to_doubles<T>(k), vd = to_doubles<T>(v);
  const std::vector<double> od = to_doubles<T>(out), dod = to_doubles<T>(dout);
  std::vector<double> dqd(qd.size(), 0.0), dkd(kd.size(), 0.0), dvd(vd.size(), 0.0);
  // A (batch, KV head) pair owns its query heads' dq rows and its KV head's dk/dv rows: split over the
  // pool; each element still accumulates in the order of t, so the result is bit-identical to one thread.
  parallel_for(sh.batch * sh.heads_kv, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> keys;
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / sh.heads_kv, g = bg % sh.heads_kv;
      for (int64_t t = 0; t < sh.seq; ++t) {
        {
          keys.clear();
          keys_of(b, t, g, keys);
          for (int64_t h = g * sh.group(); h < (g + 1) * sh.group() && !keys.empty(); ++h) {
            const int64_t qi = sh.q_row(b, t, h);
            const double* qrow = &qd[qi * sh.dim_k];
            const double* dorow = &dod[qi * sh.dim_v];
            const double row_lse = read_lse(lse, sh.lse_at(b, h, t));
            const double d = dot(dorow, &od[qi * sh.dim_v], sh.dim_v);
            for (const int64_t s : keys) {
              const int64_t ki = sh.kv_row(b, s, g);
              const double prob = std::exp(scale * dot(qrow, &kd[ki * sh.dim_k], sh.dim_k) - row_lse);
              const double ds = scale * prob * (dot(dorow, &vd[ki * sh.dim_v], sh.dim_v) - d);
              axpy(&dvd[ki * sh.dim_v], prob, dorow, sh.dim_v);
              axpy(&dqd[qi * sh.dim_k], ds, &kd[ki * sh.dim_k], sh.dim_k);
              axpy(&dkd[ki * sh.dim_k], ds, qrow, sh.dim_k);
            }
          }
        }
      }
    }
  });
  store<T>(dq, dqd);
  store<T>(dk, dkd);
  store<T>(dv, dvd);
}

// The key rows of the compressed branch: blocks 0 .. visible − 1.
auto cmp_keys(int64_t n_cmp, const NsaBlocks& nb) {
  return [n_cmp, nb](int64_t, int64_t t, int64_t, std::vector<int64_t>& keys) {
    keys.resize(static_cast<size_t>(visible_cmp_blocks(t, n_cmp, nb)));
    std::iota(keys.begin(), keys.end(), int64_t{0});
  };
}

// The key rows of the selected branch: the tokens s <= t of the blocks in indices[b, t, g, :]. Checks the
// indices (range, no repeats), which the front end cannot do without reading device memory.
auto slc_keys(const Tensor& indices, int64_t seq, int64_t heads_kv, const NsaBlocks& nb) {
  const int64_t n = indices.size(3), n_slc = (seq + nb.slc_block - 1) / nb.slc_block;
  return
      [&indices, seq, heads_kv, n, n_slc, nb](int64_t b, int64_t t, int64_t g, std::vector<int64_t>& keys) {
        const int64_t row = ((b * seq + t) * heads_kv + g) * n;
        for (int64_t slot = 0; slot < n; ++slot) {
          const int64_t j = index_at(indices, row + slot);
          NSA_CHECK(j >= -1 && j < n_slc, "[nsa_selected_attention] expected block indices in [-1, ", n_slc,
                    "), got ", j, " at [", b, ", ", t, ", ", g, ", ", slot, "]");
          if (j < 0) continue;
          for (int64_t other = 0; other < slot; ++other)
            NSA_CHECK(index_at(indices, row + other) != j, "[nsa_selected_attention] block ", j,
                      " selected twice at [", b, ", ", t, ", ", g, "]");
          for (int64_t s = j * nb.slc_block; s < std::min((j + 1) * nb.slc_block, t + 1); ++s)
            keys.push_back(s);
        }
      };
}

// The blocks query t keeps given the importance of each selection block (eq. 11 with forced blocks):
// ascending, padded with −1 to top_n.
std::vector<int64_t> choose_blocks(const std::vector<double>& importance, int64_t t, const NsaBlocks& nb) {
  const int64_t visible = t / nb.slc_block + 1;  // blocks j with j·l' <= t
  std::vector<char> forced(static_cast<size_t>(visible), 0);
  for (int64_t j = 0; j < std::min(nb.init_blocks, visible); ++j) forced[j] = 1;
  for (int64_t j = std::max<int64_t>(0, visible - nb.local_blocks); j < visible; ++j) forced[j] = 1;
  std::vector<int64_t> chosen, rest;
  for (int64_t j = 0; j < visible; ++j) (forced[j] ? chosen : rest).push_back(j);
  // The front end guarantees top_n >= init + local, so the forced blocks always fit.
  std::stable_sort(rest.begin(), rest.end(),
                   [&](int64_t a, int64_t b) { return importance[a] > importance[b]; });
  const size_t free_slots = static_cast<size_t>(nb.top_n) - chosen.size();
  chosen.insert(chosen.end(), rest.begin(), rest.begin() + std::min(free_slots, rest.size()));
  std::sort(chosen.begin(), chosen.end());
  chosen.resize(static_cast<size_t>(nb.top_n), -1);
  return chosen;
}

}  // namespace

void CpuBackend::nsa_cmp_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& kc,
                                   const Tensor& vc, const NsaBlocks& blocks, double scale) {
  dispatch_floating(q.dtype(), "nsa_compressed_attention", [&]<class T>() {
    sparse_attention_forward<T>(out, lse, q, kc, vc, scale, cmp_keys(kc.size(1), blocks));
  });
}

void CpuBackend::nsa_cmp_attention_backward(const Tensor& dq, const Tensor& dkc, const Tensor& dvc,
                                            const Tensor& dout, const Tensor& q, const Tensor& kc,
                                            const Tensor& vc, const Tensor& out, const Tensor& lse,
                                            const NsaBlocks& blocks, double scale,
                                            const AttentionGradOptions& opt) {
  // The reference forms its own row sums (opt.delta unused).
  write_or_accumulate_dq(*this, dq, opt.accumulate_dq, [&](const Tensor& target) {
    dispatch_floating(q.dtype(), "nsa_compressed_attention_backward", [&]<class T>() {
      sparse_attention_backward<T>(target, dkc, dvc, dout, q, kc, vc, out, lse, scale,
                                   cmp_keys(kc.size(1), blocks));
    });
  });
}

void CpuBackend::nsa_slc_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& indices, const NsaBlocks& blocks,
                                   double scale) {
  dispatch_floating(q.dtype(), "nsa_selected_attention", [&]<class T>() {
    sparse_attention_forward<T>(out, lse, q, k, v, scale, slc_keys(indices, q.size(1), k.size(2), blocks));
  });
}

void CpuBackend::nsa_slc_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                            const Tensor& dout, const Tensor& q, const Tensor& k,
                                            const Tensor& v, const Tensor& indices, const Tensor& out,
                                            const Tensor& lse, const NsaBlocks& blocks, double scale,
                                            const AttentionGradOptions& opt) {
  write_or_accumulate_dq(*this, dq, opt.accumulate_dq, [&](const Tensor& target) {
    dispatch_floating(q.dtype(), "nsa_selected_attention_backward", [&]<class T>() {
      sparse_attention_backward<T>(target, dk, dv, dout, q, k, v, out, lse, scale,
                                   slc_keys(indices, q.size(1), k.size(2), blocks));
    });
  });
}

// Eq. 9 read as overlap: compressed block i lends p_cmp[i] to each selection block j it overlaps, weighted
// by the number of d-token segments they share (the multiplicities of eq. 9's double sum); eq. 10 sums
// over the query heads of the group.
void CpuBackend::nsa_select(const Tensor& indices, const Tensor& q, const Tensor& kc, const Tensor& lse,
                            const NsaBlocks& blocks, double scale) {
  const int64_t batch = q.size(0), seq = q.size(1), heads_q = q.size(2), dim_k = q.size(3);
  const int64_t n_cmp = kc.size(1), heads_kv = kc.size(2), group = heads_q / heads_kv;
  const int64_t n_slc = (seq + blocks.slc_block - 1) / blocks.slc_block;
  int32_t* out = indices.data<int32_t>();
  dispatch_floating(q.dtype(), "nsa_select_blocks", [&]<class T>() {
    const std::vector<double> qd = to_doubles<T>(q), kd = to_doubles<T>(kc);
    // Rows (b, t) are independent: split over the pool.
    parallel_for(batch * seq, 16, [&](int64_t begin, int64_t end) {
      std::vector<double> importance(static_cast<size_t>(n_slc));
      for (int64_t bt = begin; bt < end; ++bt) {
        const int64_t b = bt / seq, t = bt % seq;
        {
          const int64_t visible = visible_cmp_blocks(t, n_cmp, blocks);
          for (int64_t g = 0; g < heads_kv; ++g) {
            std::fill(importance.begin(), importance.end(), 0.0);
            for (int64_t h = g * group; h < (g + 1) * group; ++h) {
              const double row_lse = read_lse(lse, (b * heads_q + h) * seq + t);
              const double* qrow = &qd[((b * seq + t) * heads_q + h) * dim_k];
              for (int64_t i = 0; i < visible; ++i) {
                const double p = std::exp(
                    scale * dot(qrow, &kd[((b * n_cmp + i) * heads_kv + g) * dim_k], dim_k) - row_lse);
                const int64_t first = i * blocks.cmp_stride, end = first + blocks.cmp_block;
                for (int64_t j = first / blocks.slc_block; j * blocks.slc_block < end && j < n_slc; ++j) {
                  const int64_t shared =
                      std::min(end, (j + 1) * blocks.slc_block) - std::max(first, j * blocks.slc_block);
                  importance[j] += p * static_cast<double>(shared / blocks.cmp_stride);
                }
              }
            }
            const std::vector<int64_t> chosen = choose_blocks(importance, t, blocks);
            int32_t* row = out + ((b * seq + t) * heads_kv + g) * blocks.top_n;
            for (int64_t s = 0; s < blocks.top_n; ++s) row[s] = static_cast<int32_t>(chosen[s]);
          }
        }
      }
    });
  });
}

}  // namespace nsa::cpu
