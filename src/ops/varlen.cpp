#include "ops/varlen.h"

#include "ops/attention.h"
#include "ops/view.h"

namespace nsa {

namespace {

// The document's slice of a [1, total, ...] tensor (undefined stays undefined).
Tensor doc_slice(const Tensor& t, int64_t start, int64_t length) {
  return t.defined() ? narrow(t, 1, start, length) : t;
}

void check_packed(const char* op, const Tensor& t, const char* name, int64_t total) {
  NSA_CHECK(t.dim() >= 2 && t.size(0) == 1 && t.size(1) == total, "[", op, "] expected ", name,
            " of shape [1, ", total, ", ...] (a packed batch), got ", t.desc());
}

}  // namespace

void check_cu_seqlens(const char* op, const std::vector<int64_t>& cu, int64_t total) {
  NSA_CHECK(cu.size() >= 2 && cu.front() == 0 && cu.back() == total, "[", op,
            "] expected cu_seqlens to start at 0 and end at the token count ", total, ", got ", cu.size(),
            " entries from ", cu.empty() ? -1 : cu.front(), " to ", cu.empty() ? -1 : cu.back());
  for (size_t i = 1; i < cu.size(); ++i) {
    NSA_CHECK(cu[i] > cu[i - 1], "[", op, "] expected strictly increasing cu_seqlens, got ", cu[i - 1],
              " then ", cu[i], " at entry ", i);
  }
}

Tensor attention_varlen(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& cu_seqlens,
                        double scale, int64_t window) {
  const char* op = "attention_varlen";
  NSA_CHECK(q.dim() == 4, "[", op, "] expected q [1, total, Hq, Dk], got ", q.desc());
  const int64_t total = q.size(1);
  check_packed(op, q, "q", total);
  check_packed(op, k, "k", total);
  check_packed(op, v, "v", total);
  check_cu_seqlens(op, cu_seqlens, total);
  if (cu_seqlens.size() == 2) return attention(q, k, v, scale, window);
  std::vector<Tensor> outs;
  for (size_t d = 0; d + 1 < cu_seqlens.size(); ++d) {
    const int64_t start = cu_seqlens[d], len = cu_seqlens[d + 1] - start;
    outs.push_back(attention(doc_slice(q, start, len), doc_slice(k, start, len), doc_slice(v, start, len), scale,
                             window));
  }
  return cat(outs, 1);
}

Tensor nsa_attention_varlen(const NsaBranchInputs& in, const std::vector<int64_t>& cu_seqlens, const NsaConfig& cfg,
                            double scale) {
  const char* op = "nsa_attention_varlen";
  NSA_CHECK(in.q.dim() == 4, "[", op, "] expected q [1, total, Hq, Dk], got ", in.q.desc());
  const int64_t total = in.q.size(1);
  for (const auto& [t, name] : {std::pair{&in.q, "q"}, {&in.k_cmp, "k_cmp"}, {&in.v_cmp, "v_cmp"},
                                {&in.k_slc, "k_slc"}, {&in.v_slc, "v_slc"}, {&in.k_win, "k_win"},
                                {&in.v_win, "v_win"}, {&in.gate_logits, "gate_logits"}}) {
    check_packed(op, *t, name, total);
  }
  if (in.slc_indices.defined()) check_packed(op, in.slc_indices, "slc_indices", total);
  check_cu_seqlens(op, cu_seqlens, total);
  if (cu_seqlens.size() == 2) return nsa_attention(in, cfg, scale);
  std::vector<Tensor> outs;
  for (size_t d = 0; d + 1 < cu_seqlens.size(); ++d) {
    const int64_t start = cu_seqlens[d], len = cu_seqlens[d + 1] - start;
    NsaBranchInputs doc = in;  // the φ weights are shared; the per-token tensors are sliced
    for (Tensor* t : {&doc.q, &doc.k_cmp, &doc.v_cmp, &doc.k_slc, &doc.v_slc, &doc.k_win, &doc.v_win,
                      &doc.gate_logits, &doc.slc_indices}) {
      *t = doc_slice(*t, start, len);
    }
    outs.push_back(nsa_attention(doc, cfg, scale));
  }
  return cat(outs, 1);
}

}  // namespace nsa
