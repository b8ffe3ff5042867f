// Helpers of the checkpoint-tool tests: small configs of each model family, checkpoint states built from
// the real model (its parameter names and shapes) with random optimizer moments, and state comparison.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "config/config.h"
#include "io/checkpoint.h"
#include "nn/transformer.h"
#include "test_util.h"

namespace nsa::test {

// A small model; `extra` is YAML appended to the base (its sections replace the base's: keep keys apart).
inline Config small_config(const std::string& model_yaml, const std::string& extra = "") {
  return parse_config("seed: 7\nmodel: {" + model_yaml + "}\n" + extra, "test.yaml");
}

inline Config dense_config(bool tied = true, int64_t vocab = 509) {
  return small_config(str("vocab_size: ", vocab, ", d_model: 16, n_layers: 2, n_heads: 8, n_kv_heads: 4, ",
                          "ffn_hidden: 24, tie_embeddings: ", tied ? "true" : "false"));
}

inline Config moe_config(int64_t shared = 0, int64_t first_k_dense = 0) {
  return small_config("vocab_size: 300, d_model: 16, n_layers: 2, n_heads: 4, n_kv_heads: 4, ffn_hidden: 24, "
                      "tie_embeddings: false",
                      str("moe: {n_experts: 4, top_k: 2, expert_hidden: 12, n_shared_experts: ", shared,
                          ", first_k_dense: ", first_k_dense, "}\n"));
}

inline Config nsa_config() {
  return small_config("vocab_size: 256, d_model: 32, n_layers: 1, n_heads: 4, n_kv_heads: 2, ffn_hidden: 24",
                      "attention: {type: nsa, nsa: {cmp_block: 8, cmp_stride: 4, slc_block: 8, slc_top_n: 4, "
                      "window: 16}}\n");
}

// The state a trainer would save for `config`: the model's parameters (random init), random AdamW moments
// in the trainer's order, counters and a step.
inline CheckpointState model_state(const Config& config, uint64_t seed = 3) {
  Generator gen(config.seed);
  nn::InitContext ctx;
  ctx.gen = &gen;
  ctx.init_std = config.model.init_std;
  const nn::Transformer model(ctx, config);
  Generator moments(seed);
  CheckpointState s;
  s.step = 42;
  s.config_yaml = to_yaml(config);
  for (const nn::NamedParam& p : model.named_parameters()) {
    s.params.emplace_back(p.name, detach(p.tensor));
    s.optimizer.emplace_back("exp_avg/" + p.name, randn(p.tensor.shape(), DType::f32, Device::cpu(), &moments));
    s.optimizer.emplace_back("exp_avg_sq/" + p.name, rand(p.tensor.shape(), DType::f32, Device::cpu(), &moments));
  }
  s.counters = {{"rng.seed", 7}, {"rng.offset", 1234}, {"data.epoch", 1}, {"data.position", 96},
                {"optimizer.step", 42}};
  return s;
}

// Same names in the same order with identical values.
inline void expect_same_entries(const std::vector<std::pair<std::string, Tensor>>& a,
                                const std::vector<std::pair<std::string, Tensor>>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << what << " #" << i;
    EXPECT_EQ(a[i].second.shape(), b[i].second.shape()) << what << " " << a[i].first;
    EXPECT_TRUE(equal_values(a[i].second, b[i].second)) << what << " " << a[i].first;
  }
}

// Optimizer entries in name order: a loaded file lists them group by group (all exp_avg/..., then all
// exp_avg_sq/...), the trainer per parameter.
inline std::vector<std::pair<std::string, Tensor>> by_name(std::vector<std::pair<std::string, Tensor>> v) {
  std::stable_sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  return v;
}

inline void expect_same_state(const CheckpointState& a, const CheckpointState& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.config_yaml, b.config_yaml);
  EXPECT_EQ(a.counters, b.counters);
  EXPECT_EQ(a.tp, b.tp);
  expect_same_entries(a.params, b.params, "params");
  expect_same_entries(by_name(a.optimizer), by_name(b.optimizer), "optimizer");
}

}  // namespace nsa::test
