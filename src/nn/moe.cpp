#include "nn/moe.h"

#include <cmath>
#include <string>

#include "ops/ops.h"

namespace nsa::nn {

MoE::MoE(const InitContext& ctx, const ModelConfig& model, const MoeConfig& moe)
    : moe_(moe), dim_(model.d_model), tp_(ctx.tp), router_(ctx, model.d_model, moe.n_experts, ctx.init_std) {
  add_child("router", router_);
  const double out_std = ctx.init_std / std::sqrt(2.0 * static_cast<double>(model.n_layers));
  const int64_t per_rank = moe.n_experts / ctx.tp.size;
  for (int64_t e = 0; e < moe.n_experts; ++e) {
    // Every expert is drawn (the random stream stays that of the unsharded model); other ranks' are dropped.
    auto expert = std::make_unique<SwiGLU>(ctx, model.d_model, moe.expert_hidden, out_std, /*tensor_parallel=*/false);
    if (e / per_rank != ctx.tp.rank) expert.reset();
    if (expert) add_child("experts." + std::to_string(e), *expert);
    experts_.push_back(std::move(expert));
  }
  if (moe.n_shared_experts > 0) {
    shared_ = std::make_unique<SwiGLU>(ctx, model.d_model, moe.n_shared_experts * moe.expert_hidden, out_std);
    add_child("shared", *shared_);
  }
}

Tensor MoE::forward(const Tensor& x, Tensor* aux_loss, Routing* routing) const {
  const int64_t n = x.numel() / dim_, k = moe_.top_k, n_experts = moe_.n_experts;
  const Tensor x2 = tp_enter(tp_, reshape(x, {n, dim_}));
  // The router runs in the master dtype (f32): small logit differences decide the routing.
  const DType router_dtype = router_.weight().dtype();
  const Tensor probs = softmax(router_.forward(to(x2, router_dtype)), -1);  // [n, E]
  auto [top_p, top_i] = topk(probs, k);                                       // [n, k]
  if (moe_.normalize_topk) top_p = div(top_p, sum(top_p, {-1}, true));

  // Host routing: token lists per expert, in expert order (one device→host copy).
  Routing r{n, k, n_experts, to_vector<int64_t>(top_i), std::vector<int64_t>(n_experts, 0)};
  std::vector<int64_t> slot_order, token_order;  // over all n·k assignments, grouped by expert
  std::vector<std::vector<int64_t>> tokens_of(n_experts);
  for (int64_t a = 0; a < n * k; ++a) {
    const int64_t e = r.expert[a];
    NSA_CHECK(e >= 0 && e < n_experts, "[moe] router chose expert ", e, " of ", n_experts);
    ++r.counts[e];
    tokens_of[e].push_back(a);
  }
  std::vector<Tensor> outputs;
  for (int64_t e = 0; e < n_experts; ++e) {
    if (tokens_of[e].empty() || !experts_[e]) continue;
    std::vector<int64_t> tokens;
    for (int64_t a : tokens_of[e]) {
      slot_order.push_back(a);
      token_order.push_back(a / k);
      tokens.push_back(a / k);
    }
    const Tensor index = from_vector<int64_t>(tokens, {static_cast<int64_t>(tokens.size())}, DType::i64,
                                              x.device());
    outputs.push_back(experts_[e]->forward(index_select(x2, 0, index)));
  }
  Tensor y = zeros({n, dim_}, x.dtype(), x.device());
  if (!outputs.empty()) {  // (a TP rank whose experts got no token has none)
    const Dims flat{static_cast<int64_t>(slot_order.size())};
    const Tensor slots = from_vector<int64_t>(slot_order, flat, DType::i64, x.device());
    const Tensor token_index = from_vector<int64_t>(token_order, flat, DType::i64, x.device());
    const Tensor gate = to(index_select(reshape(top_p, {n * k}), 0, slots), x.dtype());  // [assignments]
    y = index_add(y, 0, token_index, mul(cat(outputs, 0), unsqueeze(gate, 1)));
  }
  if (shared_) y = add(y, shared_->forward_partial(x2));
  y = tp_exit(tp_, y);

  // Load balance: f_i is a constant of the routing, P_i carries the gradient.
  std::vector<double> f(n_experts);
  for (int64_t e = 0; e < n_experts; ++e) {
    f[e] = static_cast<double>(n_experts) / static_cast<double>(k * n) * static_cast<double>(r.counts[e]);
  }
  const Tensor p_mean = mean(probs, {0});
  const Tensor aux = mul_scalar(sum(mul(p_mean, from_vector<double>(f, {n_experts}, router_dtype, x.device()))),
                                moe_.aux_loss_weight);
  if (aux_loss) *aux_loss = aux_loss->defined() ? add(*aux_loss, aux) : aux;
  if (routing) *routing = std::move(r);
  return reshape(y, x.shape());
}

}  // namespace nsa::nn
