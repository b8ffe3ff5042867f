#include "nn/nsa_attention.h"

#include <cmath>

#include "ops/nsa.h"
#include "ops/ops.h"

namespace nsa::nn {

namespace {

int64_t phi_hidden(const ModelConfig& model, const NsaConfig& nsa) {
  return nsa.cmp_hidden > 0 ? nsa.cmp_hidden : model.resolved_head_dim();
}

}  // namespace

NsaBranches::NsaBranches(const InitContext& ctx, const ModelConfig& model, const NsaConfig& nsa)
    : model_(model), nsa_(nsa), gate_(ctx, model.d_model, model.n_heads * 3, ctx.init_std, TpSplit::rows) {
  const int64_t D = model.d_model, Hkv = model.n_kv_heads;
  const int64_t Dk = model.resolved_head_dim(), Dv = model.resolved_v_head_dim();
  const int64_t l = nsa.cmp_block, hidden = phi_hidden(model, nsa);
  add_child("gate", gate_);
  if (nsa.separate_kv) {
    // The window branch uses the attention's own wk/wv; the other two branches get their own.
    wk_cmp_ = std::make_unique<Linear>(ctx, D, Hkv * Dk, ctx.init_std, TpSplit::rows);
    wv_cmp_ = std::make_unique<Linear>(ctx, D, Hkv * Dv, ctx.init_std, TpSplit::rows);
    wk_slc_ = std::make_unique<Linear>(ctx, D, Hkv * Dk, ctx.init_std, TpSplit::rows);
    wv_slc_ = std::make_unique<Linear>(ctx, D, Hkv * Dv, ctx.init_std, TpSplit::rows);
    add_child("wk_cmp", *wk_cmp_);
    add_child("wv_cmp", *wv_cmp_);
    add_child("wk_slc", *wk_slc_);
    add_child("wv_slc", *wv_slc_);
  }
  // φ: W1 sees l·D inputs, so its init std shrinks with the fan-in to keep compressed keys at the scale of
  // ordinary keys.
  const double w1_std = 1.0 / std::sqrt(static_cast<double>(l * Dk));
  const double w2_std = 1.0 / std::sqrt(static_cast<double>(hidden));
  cmp_pos_k_ = add_parameter("cmp_k.pos", init_normal(ctx, {l, Dk}, ctx.init_std), ParamKind::embedding);
  cmp_w1_k_ = add_parameter("cmp_k.w1", init_normal(ctx, {hidden, l * Dk}, w1_std), ParamKind::weight);
  cmp_w2_k_ = add_parameter("cmp_k.w2", init_normal(ctx, {Dk, hidden}, w2_std), ParamKind::weight);
  cmp_pos_v_ = add_parameter("cmp_v.pos", init_normal(ctx, {l, Dv}, ctx.init_std), ParamKind::embedding);
  cmp_w1_v_ = add_parameter("cmp_v.w1", init_normal(ctx, {hidden, l * Dv},
                                                    1.0 / std::sqrt(static_cast<double>(l * Dv))),
                            ParamKind::weight);
  cmp_w2_v_ = add_parameter("cmp_v.w2", init_normal(ctx, {Dv, hidden}, w2_std), ParamKind::weight);
  // The forward sees this TP rank's heads only (the projections above keep whole GQA groups; φ is shared
  // by all heads and replicated).
  model_.head_dim = Dk;  // resolved before the head counts change (it may default to d_model / n_heads)
  model_.v_head_dim = Dv;
  model_.n_heads /= ctx.tp.size;
  model_.n_kv_heads /= ctx.tp.size;
}

NsaBranches::~NsaBranches() = default;

Tensor NsaBranches::forward(const Tensor& x, const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& positions, double scale) const {
  const int64_t B = x.size(0), T = x.size(1), Hkv = model_.n_kv_heads;
  const int64_t Dk = model_.resolved_head_dim(), Dv = model_.resolved_v_head_dim();
  const DType dt = x.dtype();
  NsaBranchInputs in;
  in.q = q;
  in.k_win = k;
  in.v_win = v;
  if (nsa_.separate_kv) {
    // Keys of every branch carry RoPE like the window's, so q·k means the same thing in all three.
    auto keys = [&](const Linear& w) { return rope(reshape(w.forward(x), {B, T, Hkv, Dk}), positions, model_.rope_theta); };
    in.k_cmp = keys(*wk_cmp_);
    in.k_slc = keys(*wk_slc_);
    in.v_cmp = reshape(wv_cmp_->forward(x), {B, T, Hkv, Dv});
    in.v_slc = reshape(wv_slc_->forward(x), {B, T, Hkv, Dv});
  } else {
    in.k_cmp = in.k_slc = k;
    in.v_cmp = in.v_slc = v;
  }
  in.gate_logits = reshape(gate_.forward(x), {B, T, model_.n_heads, 3});
  in.cmp_pos_k = to(cmp_pos_k_, dt);
  in.cmp_w1_k = to(cmp_w1_k_, dt);
  in.cmp_w2_k = to(cmp_w2_k_, dt);
  in.cmp_pos_v = to(cmp_pos_v_, dt);
  in.cmp_w1_v = to(cmp_w1_v_, dt);
  in.cmp_w2_v = to(cmp_w2_v_, dt);
  return nsa_attention(in, nsa_, scale);
}

int64_t nsa_parameter_count(const ModelConfig& model, const NsaConfig& nsa) {
  const int64_t D = model.d_model, Hkv = model.n_kv_heads;
  const int64_t Dk = model.resolved_head_dim(), Dv = model.resolved_v_head_dim();
  const int64_t l = nsa.cmp_block, hidden = phi_hidden(model, nsa);
  const int64_t gate = D * model.n_heads * 3;
  const int64_t branch_kv = nsa.separate_kv ? 2 * (D * Hkv * Dk + D * Hkv * Dv) : 0;
  const int64_t phi = l * Dk + hidden * l * Dk + Dk * hidden + l * Dv + hidden * l * Dv + Dv * hidden;
  return gate + branch_kv + phi;
}

}  // namespace nsa::nn
