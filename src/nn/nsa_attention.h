// The parameters of NSA's three branches inside SelfAttention (attention.type: nsa): per-branch K/V
// projections for the compressed and selected branches (when nsa.separate_kv; the window branch uses the
// attention's own wk/wv), the compression MLPs φ for keys and values, and the gate projection
// (d_model → n_heads·3). The math is in ops/nsa.h; docs/nsa.md explains it.
#pragma once

#include <memory>

#include "config/config.h"
#include "nn/layers.h"

namespace nsa::nn {

class NsaBranches : public Module {
 public:
  NsaBranches(const InitContext& ctx, const ModelConfig& model, const NsaConfig& nsa);
  ~NsaBranches() override;
  // x [B, T, d_model] (the normed block input: gates and per-branch projections); q [B, T, Hq, Dk] and the
  // window branch's k, v: the attention's roped projections. Returns the gated sum [B, T, Hq, Dv].
  Tensor forward(const Tensor& x, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions,
                 double scale) const;

 private:
  ModelConfig model_;  // head counts of this TP rank
  NsaConfig nsa_;
  Linear gate_;
  std::unique_ptr<Linear> wk_cmp_, wv_cmp_, wk_slc_, wv_slc_;
  Tensor cmp_pos_k_, cmp_w1_k_, cmp_w2_k_, cmp_pos_v_, cmp_w1_v_, cmp_w2_v_;
};

// The parameters NSA adds to one attention layer (model_stats counts models it does not build).
int64_t nsa_parameter_count(const ModelConfig& model, const NsaConfig& nsa);

}  // namespace nsa::nn
