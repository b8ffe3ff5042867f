// Mixture-of-experts feed-forward in the DeepSeekMoE form: a softmax router over n_experts, each token sent
// to its top_k experts (SwiGLU each) weighted by the router probabilities (renormalised over the k when
// moe.normalize_topk), plus n_shared_experts always-on experts (merged into one SwiGLU of
// n_shared·expert_hidden, which is the same function), plus a load-balancing loss
//   aux = weight · Σ_i f_i · P_i,  f_i = E/(k·N) · #tokens routed to i,  P_i = mean over tokens of p_i
// (DeepSeekMoE eq. 12-14; gradient through P only).
//
// Dropless: every token reaches exactly k experts. The per-expert token lists are built on the host, which
// costs one device→host copy of the [N, k] routing per layer (a sync inside the step); a device-side
// grouped GEMM that removes it is planned with the whole-step speed work (docs/architecture.md).
//
// Tensor parallelism: routed experts are split whole over the TP ranks (expert e on rank e / (E / tp));
// the router is replicated and every rank routes identically, each computes only its own experts' outputs
// (and its slice of the shared experts), and one all-reduce sums them. The router's gradient is then a
// partial sum per rank (all-reduced by the optimizer, dist/sharding.h) and the auxiliary loss, which every
// rank computes in full, enters the backward scaled by 1/tp (nn::Transformer::loss).
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "nn/mlp.h"

namespace nsa::nn {

// Which experts each token chose: expert[n·k + j] is token n's j-th choice (descending probability).
struct Routing {
  int64_t tokens = 0, top_k = 0, n_experts = 0;
  std::vector<int64_t> expert;
  std::vector<int64_t> counts;  // tokens per expert
};

class MoE : public Module {
 public:
  MoE(const InitContext& ctx, const ModelConfig& model, const MoeConfig& moe);
  // x [B, T, dim] -> [B, T, dim]. Adds this layer's weighted auxiliary loss (0-d) to *aux_loss (or sets it
  // when undefined); `routing`, when given, receives the routing (tests, statistics).
  Tensor forward(const Tensor& x, Tensor* aux_loss, Routing* routing = nullptr) const;

 private:
  MoeConfig moe_;
  int64_t dim_;
  TpGroup tp_;
  Linear router_;
  std::vector<std::unique_ptr<SwiGLU>> experts_;  // null for experts another TP rank owns
  std::unique_ptr<SwiGLU> shared_;
};

}  // namespace nsa::nn
