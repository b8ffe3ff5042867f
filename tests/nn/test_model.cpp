// The Transformer: parameter names and counts (against the analytic count), deterministic init, an f64
// finite-difference gradient check of the whole model, and CPU vs CUDA logits for the same weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "config/config.h"
#include "nn/model_stats.h"
#include "nn/transformer.h"
#include "test_util.h"

namespace nsa::nn {
namespace {

Config tiny_config(bool moe, bool nsa = false) {
  Config c;
  c.model.vocab_size = 23;
  c.model.d_model = 8;
  c.model.n_layers = 2;
  c.model.n_heads = 4;
  c.model.n_kv_heads = 2;
  c.model.ffn_hidden = 12;
  c.training.seq_len = 5;
  if (moe) {
    c.moe.n_experts = 4;
    c.moe.top_k = 2;
    c.moe.n_shared_experts = 1;
    c.moe.expert_hidden = 6;
    c.moe.first_k_dense = 1;
  }
  if (nsa) {
    c.attention.type = "nsa";
    c.attention.nsa = NsaConfig{.cmp_block = 4, .cmp_stride = 2, .slc_block = 4, .slc_top_n = 2,
                                .slc_init_blocks = 1, .slc_local_blocks = 1, .window = 3};
  }
  return c;
}

Tensor ids_of(std::vector<int64_t> v, int64_t b, int64_t t) { return from_vector<int64_t>(v, {b, t}); }

TEST(Transformer, ParameterNamesAndCountsMatchTheAnalyticCount) {
  for (int variant = 0; variant < 3; ++variant) {
    const bool moe = variant == 1, nsa = variant == 2;
    for (bool tied : {true, false}) {
      Config c = tiny_config(moe, nsa);
      c.model.tie_embeddings = tied;
      Generator g(1);
      Transformer model({Device::cpu(), DType::f32, &g, 0.02}, c);
      const std::vector<NamedParam> params = model.named_parameters();
      EXPECT_EQ(params.front().name, "embed.weight");
      EXPECT_EQ(params[1].name, "blocks.0.attn_norm.weight");
      EXPECT_EQ(params[2].name, "blocks.0.attn.wq.weight");
      EXPECT_EQ(params.back().name, tied ? "final_norm.weight" : "lm_head.weight");
      bool saw_expert = false;
      for (const NamedParam& p : params) saw_expert |= p.name == "blocks.1.moe.experts.3.w_down.weight";
      EXPECT_EQ(saw_expert, moe);
      EXPECT_EQ(model.num_parameters(), model_stats(c).params) << "moe " << moe << " tied " << tied;
    }
  }
}

TEST(Transformer, InitIsDeterministicFromTheSeed) {
  const Config c = tiny_config(true);
  Generator g1(7), g2(7), g3(8);
  Transformer a({Device::cpu(), DType::f32, &g1, 0.02}, c), b({Device::cpu(), DType::f32, &g2, 0.02}, c),
      other({Device::cpu(), DType::f32, &g3, 0.02}, c);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), po = other.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(test::equal_values(pa[i].tensor, pb[i].tensor)) << pa[i].name;
  EXPECT_FALSE(test::equal_values(pa[0].tensor, po[0].tensor));
}

// Central differences on a sample of every parameter's entries, in f64, against the autograd gradient.
void check_model_gradients(bool moe, bool nsa = false) {
  const Config c = tiny_config(moe, nsa);
  Generator g(3);
  // A larger init than usual makes every path (attention mixing, routing) contribute visibly.
  Transformer model({Device::cpu(), DType::f64, &g, 0.3}, c);
  // NSA needs a few blocks: 2 sequences of 10 tokens (l=4, d=2, l'=4, w=3).
  const Tensor ids = ids_of({1, 5, 7, 2, 9, 22, 3, 3, 0, 14, 4, 8, 12, 16, 20, 1, 2, 3, 4, 5}, 2, 10);
  const Tensor targets = ids_of({5, 7, 2, 9, 1, 3, 3, 0, 14, 6, 8, 12, 16, 20, 1, 2, 3, 4, 5, 6}, 2, 10);
  const LossOutput out = model.loss(ids, targets, DType::f64);
  backward(out.loss);
  double worst = 0;
  const double eps = 1e-5;  // central differences in f64: smaller steps lose more to rounding than they gain
  for (const NamedParam& p : model.named_parameters()) {
    // An expert no token was routed to gets no gradient at all (undefined = zero).
    const std::vector<double> grad = p.tensor.grad().defined() ? to_vector<double>(p.tensor.grad())
                                                               : std::vector<double>(p.tensor.numel(), 0.0);
    double* data = p.tensor.data<double>();
    double num2 = 0, diff2 = 0;
    const int64_t n = p.tensor.numel(), stride = std::max<int64_t>(1, n / 7);
    for (int64_t i = 0; i < n; i += stride) {
      const double saved = data[i];
      autograd::NoGradGuard no_grad;
      data[i] = saved + eps;
      const double up = item(model.loss(ids, targets, DType::f64).loss);
      data[i] = saved - eps;
      const double down = item(model.loss(ids, targets, DType::f64).loss);
      data[i] = saved;
      const double numeric = (up - down) / (2 * eps);
      num2 += numeric * numeric;
      diff2 += (numeric - grad[i]) * (numeric - grad[i]);
    }
    const double rel = num2 > 0 ? std::sqrt(diff2 / num2) : std::sqrt(diff2);
    worst = std::max(worst, rel);
    EXPECT_LT(rel, 1e-6) << p.name;
  }
  std::printf("model gradcheck (%s): worst relative error %.3g\n", nsa ? "nsa" : moe ? "moe" : "dense", worst);
}

TEST(Transformer, GradientCheckDense) { check_model_gradients(false); }
TEST(Transformer, GradientCheckMoE) { check_model_gradients(true); }
// NSA's block selection is piecewise constant: ±1e-6 perturbations of this small model do not flip it, so
// the finite differences see the same selection the analytic gradient used.
TEST(Transformer, GradientCheckNsa) { check_model_gradients(false, true); }

TEST(Transformer, CudaLogitsMatchCpuForTheSameWeights) {
  NSA_REQUIRE_GPU();
  for (int variant = 0; variant < 3; ++variant) {
    const bool moe = variant == 1, nsa = variant == 2;
    const Config c = tiny_config(moe, nsa);
    Generator gc(11), gg(11);
    // Same seed on both devices: Philox makes the weights bit-identical, which this test also checks.
    Transformer cpu({Device::cpu(), DType::f32, &gc, 0.1}, c), gpu({Device::cuda(0), DType::f32, &gg, 0.1}, c);
    const auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
    for (size_t i = 0; i < pc.size(); ++i) ASSERT_TRUE(test::equal_values(pc[i].tensor, pg[i].tensor)) << pc[i].name;
    const Tensor ids = ids_of({1, 5, 7, 2, 9, 22, 3, 3, 0, 14, 4, 8, 12, 16, 20, 1, 2, 3, 4, 5}, 2, 10);
    autograd::NoGradGuard no_grad;
    const Tensor ref = cpu.logits(ids, DType::f32);
    const Tensor f32 = gpu.logits(to(ids, Device::cuda(0)), DType::f32);
    const Tensor bf16 = gpu.logits(to(ids, Device::cuda(0)), DType::bf16);
    const double e32 = test::rel_error(f32, ref), e16 = test::rel_error(bf16, ref);
    std::printf("logits %s: cuda f32 rel err %.3g, cuda bf16 rel err %.3g\n", nsa ? "nsa" : moe ? "moe" : "dense",
                e32, e16);
    EXPECT_LT(e32, 1e-5);
    EXPECT_LT(e16, 3e-2);
  }
}

TEST(ModelStats, NsaPaperArchitectureHasAbout27BParameters) {
  const Config c = load_config(std::string(NSA_SOURCE_DIR) + "/configs/nsa-paper-27b.yaml");
  const ModelStats s = model_stats(c);
  std::printf("nsa-paper-27b: %.2fB parameters, %.2fB active, %.3g training FLOPs/token at seq %lld\n",
              s.params / 1e9, s.active_params / 1e9, s.train_flops_per_token,
              static_cast<long long>(c.training.seq_len));
  // The paper: 27B in total, 3B active. Our expert width is a guess (the paper does not give it).
  EXPECT_GT(s.params, 24e9);
  EXPECT_LT(s.params, 30e9);
  EXPECT_LT(s.active_params, s.params / 4);
}

}  // namespace
}  // namespace nsa::nn
