// MoE: every token reaches exactly top_k distinct experts, the output and the load-balancing loss equal a
// hand computation in double from the same weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "nn/moe.h"
#include "test_util.h"

namespace nsa::nn {
namespace {

struct MoeFixture {
  ModelConfig model;
  MoeConfig moe;
  Generator gen{5};
  std::unique_ptr<MoE> layer;
  std::map<std::string, std::vector<double>> w;  // parameter values by name

  MoeFixture(int64_t experts, int64_t k, int64_t shared, bool normalize) {
    model.d_model = 6;
    model.n_layers = 2;
    moe.n_experts = experts;
    moe.top_k = k;
    moe.n_shared_experts = shared;
    moe.expert_hidden = 5;
    moe.aux_loss_weight = 0.25;
    moe.normalize_topk = normalize;
    layer = std::make_unique<MoE>(InitContext{Device::cpu(), DType::f64, &gen, 0.5}, model, moe);
    for (const NamedParam& p : layer->named_parameters()) w[p.name] = to_vector<double>(p.tensor);
  }

  // SwiGLU of the expert whose weights are named prefix.*: [hidden, dim] gate/up, [dim, hidden] down.
  std::vector<double> swiglu(const std::string& prefix, const double* x, int64_t hidden) const {
    const int64_t d = model.d_model;
    const auto& g = w.at(prefix + ".w_gate.weight");
    const auto& u = w.at(prefix + ".w_up.weight");
    const auto& dn = w.at(prefix + ".w_down.weight");
    std::vector<double> h(hidden), y(d, 0.0);
    for (int64_t j = 0; j < hidden; ++j) {
      double a = 0, b = 0;
      for (int64_t i = 0; i < d; ++i) {
        a += g[j * d + i] * x[i];
        b += u[j * d + i] * x[i];
      }
      h[j] = a / (1 + std::exp(-a)) * b;
    }
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j < hidden; ++j) y[i] += dn[i * hidden + j] * h[j];
    }
    return y;
  }
};

void check_against_hand_computation(int64_t experts, int64_t k, int64_t shared, bool normalize) {
  MoeFixture f(experts, k, shared, normalize);
  const int64_t d = f.model.d_model, tokens = 2 * 9;
  Generator xg(9);
  const Tensor x = randn({2, 9, d}, DType::f64, Device::cpu(), &xg);
  Tensor aux;
  Routing routing;
  const Tensor y = f.layer->forward(x, &aux, &routing);
  const std::vector<double> xv = to_vector<double>(x), yv = to_vector<double>(y);

  // Routing: k distinct experts per token, counts consistent.
  ASSERT_EQ(routing.expert.size(), static_cast<size_t>(tokens * k));
  EXPECT_EQ(std::accumulate(routing.counts.begin(), routing.counts.end(), int64_t{0}), tokens * k);
  std::vector<double> p_mean(experts, 0.0), count(experts, 0.0);
  double max_err = 0, ref_norm = 0;
  const auto& router = f.w.at("router.weight");
  for (int64_t n = 0; n < tokens; ++n) {
    const double* xn = &xv[n * d];
    std::vector<double> logit(experts), p(experts);
    for (int64_t e = 0; e < experts; ++e) {
      logit[e] = 0;
      for (int64_t i = 0; i < d; ++i) logit[e] += router[e * d + i] * xn[i];
    }
    const double mx = *std::max_element(logit.begin(), logit.end());
    double z = 0;
    for (int64_t e = 0; e < experts; ++e) z += std::exp(logit[e] - mx);
    for (int64_t e = 0; e < experts; ++e) p[e] = std::exp(logit[e] - mx) / z;
    std::vector<int64_t> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    double chosen_sum = 0;
    for (int64_t j = 0; j < k; ++j) chosen_sum += p[order[j]];
    std::vector<double> expect(d, 0.0);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = order[j];
      EXPECT_EQ(routing.expert[n * k + j], e) << "token " << n << " choice " << j;
      count[e] += 1;
      const double gate = normalize ? p[e] / chosen_sum : p[e];
      const std::vector<double> ye = f.swiglu("experts." + std::to_string(e), xn, f.moe.expert_hidden);
      for (int64_t i = 0; i < d; ++i) expect[i] += gate * ye[i];
    }
    if (shared > 0) {
      const std::vector<double> ys = f.swiglu("shared", xn, shared * f.moe.expert_hidden);
      for (int64_t i = 0; i < d; ++i) expect[i] += ys[i];
    }
    for (int64_t e = 0; e < experts; ++e) p_mean[e] += p[e] / tokens;
    for (int64_t i = 0; i < d; ++i) {
      max_err = std::max(max_err, std::abs(yv[n * d + i] - expect[i]));
      ref_norm = std::max(ref_norm, std::abs(expect[i]));
    }
  }
  EXPECT_LT(max_err, 1e-12 * std::max(1.0, ref_norm)) << "moe output vs hand computation";
  // aux = weight · Σ_e f_e · P_e with f_e = E / (k · N) · count_e.
  double expect_aux = 0;
  for (int64_t e = 0; e < experts; ++e) {
    EXPECT_EQ(routing.counts[e], static_cast<int64_t>(count[e]));
    expect_aux += static_cast<double>(experts) / static_cast<double>(k * tokens) * count[e] * p_mean[e];
  }
  expect_aux *= f.moe.aux_loss_weight;
  std::printf("moe E=%lld k=%lld shared=%lld: output max err %.3g, aux %.12f (hand %.12f)\n",
              static_cast<long long>(experts), static_cast<long long>(k), static_cast<long long>(shared), max_err,
              item(aux), expect_aux);
  EXPECT_NEAR(item(aux), expect_aux, 1e-14);
}

TEST(MoE, MatchesHandComputationTop2WithSharedExpert) { check_against_hand_computation(4, 2, 1, true); }
TEST(MoE, MatchesHandComputationTop1Unnormalised) { check_against_hand_computation(5, 1, 0, false); }
TEST(MoE, MatchesHandComputationAllExpertsChosen) { check_against_hand_computation(3, 3, 2, true); }

TEST(MoE, UniformRoutingGivesAuxLossEqualToItsWeight) {
  // With a zero router every probability is 1/E and f averages to 1: aux = weight · Σ f_e / E = weight.
  MoeFixture f(4, 2, 0, true);
  for (const NamedParam& p : f.layer->named_parameters()) {
    autograd::NoGradGuard no_grad;
    if (p.name == "router.weight") fill_(p.tensor, 0.0);
  }
  Generator xg(2);
  Tensor aux;
  f.layer->forward(randn({1, 8, f.model.d_model}, DType::f64, Device::cpu(), &xg), &aux);
  EXPECT_NEAR(item(aux), f.moe.aux_loss_weight, 1e-15);
}

}  // namespace
}  // namespace nsa::nn
