// Export to safetensors and import back (data_tools/ckpt_convert.h): the name mapping is a bijection over
// every model family's parameters, export → import gives identical tensors (dense tied/untied, MoE, NSA),
// config.json holds what transformers reads, import refuses files that do not fit the model, and the
// logits of an imported checkpoint equal the original's.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "ckpt_convert.h"
#include "ckpt_test_util.h"
#include "io/io_test_util.h"
#include "io/json.h"
#include "io/safetensors.h"

namespace nsa::test {
namespace {

using data_tools::hf_architecture;
using data_tools::hf_name;
using data_tools::nsa_name;

TEST(HfNames, KnownNames) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"embed.weight", "model.embed_tokens.weight"},
      {"final_norm.weight", "model.norm.weight"},
      {"lm_head.weight", "lm_head.weight"},
      {"blocks.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
      {"blocks.11.mlp_norm.weight", "model.layers.11.post_attention_layernorm.weight"},
      {"blocks.3.attn.wq.weight", "model.layers.3.self_attn.q_proj.weight"},
      {"blocks.3.attn.wo.weight", "model.layers.3.self_attn.o_proj.weight"},
      {"blocks.3.mlp.w_gate.weight", "model.layers.3.mlp.gate_proj.weight"},
      {"blocks.3.mlp.w_down.weight", "model.layers.3.mlp.down_proj.weight"},
      {"blocks.2.moe.router.weight", "model.layers.2.block_sparse_moe.gate.weight"},
      {"blocks.2.moe.experts.15.w_gate.weight", "model.layers.2.block_sparse_moe.experts.15.w1.weight"},
      {"blocks.2.moe.experts.15.w_down.weight", "model.layers.2.block_sparse_moe.experts.15.w2.weight"},
      {"blocks.2.moe.experts.15.w_up.weight", "model.layers.2.block_sparse_moe.experts.15.w3.weight"},
      {"blocks.2.moe.shared.w_up.weight", "model.layers.2.block_sparse_moe.shared_experts.up_proj.weight"},
      {"blocks.0.attn.nsa.cmp_k.w1", "model.layers.0.self_attn.nsa.cmp_k.w1"},
      {"blocks.0.attn.nsa.gate.weight", "model.layers.0.self_attn.nsa.gate.weight"},
  };
  for (const auto& [ours, hf] : pairs) {
    EXPECT_EQ(hf_name(ours), hf);
    EXPECT_EQ(nsa_name(hf, "f"), ours);
  }
  for (const char* bad : {"blocks.x.attn.wq.weight", "blocks.01.attn.wq.weight", "blocks.0.attn.wz.weight", "embed",
                          "blocks.0.moe.experts.1.w4.weight", "blocks.0.attn.nsa."}) {
    expect_input_error([&] { hf_name(bad); }, {"no Hugging Face name", bad});
  }
  expect_input_error([&] { nsa_name("model.layers.0.self_attn.rotary_emb.inv_freq", "m.safetensors"); },
                     {"m.safetensors: tensor 'model.layers.0.self_attn.rotary_emb.inv_freq' is not"});
}

TEST(HfNames, BijectiveOverEveryModel) {
  for (const Config& config : {dense_config(true), dense_config(false), moe_config(), moe_config(1, 1), nsa_config()}) {
    std::set<std::string> exported;
    for (const auto& [name, t] : model_state(config).params) {
      const std::string hf = hf_name(name);
      EXPECT_TRUE(exported.insert(hf).second) << hf;
      EXPECT_EQ(nsa_name(hf, "f"), name);
    }
  }
}

TEST(HfArchitecture, Classification) {
  EXPECT_EQ(hf_architecture(dense_config()).name, "LlamaForCausalLM");
  EXPECT_TRUE(hf_architecture(dense_config()).loadable);
  EXPECT_EQ(hf_architecture(moe_config()).name, "MixtralForCausalLM");
  const auto shared = hf_architecture(moe_config(1, 1));
  EXPECT_EQ(shared.name, "NsaTrainForCausalLM");
  EXPECT_FALSE(shared.loadable);
  EXPECT_EQ(shared.why_not, "shared experts; dense first layers (moe.first_k_dense)");
  EXPECT_EQ(hf_architecture(nsa_config()).why_not, "NSA attention");
}

TEST(HfConfig, LlamaFields) {
  const Config config = dense_config(false);
  const json::Value v = json::parse(data_tools::hf_config_json(config, DType::bf16), "config.json");
  auto number = [&](const char* key) {
    double d = -1;
    EXPECT_NE(v.find(key), nullptr) << key;
    if (v.find(key)) {
      EXPECT_TRUE(v.find(key)->to_double(&d)) << key;
    }
    return d;
  };
  EXPECT_EQ(v.find("architectures")->items()[0].text(), "LlamaForCausalLM");
  EXPECT_EQ(v.find("model_type")->text(), "llama");
  EXPECT_EQ(number("vocab_size"), 509);
  EXPECT_EQ(number("hidden_size"), 16);
  EXPECT_EQ(number("intermediate_size"), 24);
  EXPECT_EQ(number("num_hidden_layers"), 2);
  EXPECT_EQ(number("num_attention_heads"), 8);
  EXPECT_EQ(number("num_key_value_heads"), 4);
  EXPECT_EQ(number("head_dim"), 2);
  EXPECT_EQ(number("rms_norm_eps"), config.model.norm_eps);
  EXPECT_EQ(number("rope_theta"), config.model.rope_theta);
  EXPECT_FALSE(v.find("tie_word_embeddings")->boolean());
  EXPECT_EQ(v.find("hidden_act")->text(), "silu");
  EXPECT_EQ(v.find("torch_dtype")->text(), "bfloat16");
  EXPECT_EQ(v.find("num_local_experts"), nullptr);

  const json::Value m = json::parse(data_tools::hf_config_json(moe_config(), DType::f32), "config.json");
  double experts = 0, k = 0, inter = 0;
  ASSERT_TRUE(m.find("num_local_experts")->to_double(&experts));
  ASSERT_TRUE(m.find("num_experts_per_tok")->to_double(&k));
  ASSERT_TRUE(m.find("intermediate_size")->to_double(&inter));
  EXPECT_EQ(experts, 4);
  EXPECT_EQ(k, 2);
  EXPECT_EQ(inter, 12);  // Mixtral: each expert's width
  EXPECT_EQ(m.find("model_type")->text(), "mixtral");
}

// export -> import: the same parameters in model order, counters and step carried, moments zero.
void check_export_import(const Config& config, DType dtype) {
  TempDir dir;
  const CheckpointState whole = model_state(config);
  const auto r = data_tools::export_safetensors(whole, config, dir.file("exp"), dtype, "ckpt.h5");
  EXPECT_TRUE(std::filesystem::exists(dir.file("exp/config.json")));
  const SafetensorsHeader h = read_safetensors_header(r.safetensors_path);
  const size_t expected = whole.params.size();
  EXPECT_EQ(h.tensors.size(), expected);
  for (const SafetensorsEntry& e : h.tensors) EXPECT_EQ(e.dtype, dtype == DType::f32 ? "F32" : "BF16");
  bool has_format = false;
  for (const auto& [k, v] : h.metadata) has_format = has_format || (k == "format" && v == "pt");
  EXPECT_TRUE(has_format) << "transformers needs __metadata__.format = pt";

  const data_tools::ImportResult imp = data_tools::import_safetensors(dir.file("exp"), std::nullopt, std::nullopt);
  EXPECT_EQ(imp.config, parse_config(whole.config_yaml, imp.config.source));
  EXPECT_EQ(imp.state.step, whole.step);
  ASSERT_EQ(imp.state.params.size(), whole.params.size());
  for (size_t i = 0; i < whole.params.size(); ++i) {
    EXPECT_EQ(imp.state.params[i].first, whole.params[i].first);
    const Tensor want = dtype == DType::f32 ? whole.params[i].second
                                            : to(to(whole.params[i].second, DType::bf16), DType::f32);
    EXPECT_TRUE(equal_values(imp.state.params[i].second, want)) << whole.params[i].first;
  }
  ASSERT_EQ(imp.state.optimizer.size(), 2 * whole.params.size());
  EXPECT_EQ(imp.state.optimizer[1].first, "exp_avg_sq/" + whole.params[0].first);
  EXPECT_EQ(item(sum(mul(imp.state.optimizer[3].second, imp.state.optimizer[3].second))), 0.0);
  const std::vector<std::pair<std::string, int64_t>> counters = {
      {"rng.seed", 7}, {"rng.offset", 1234}, {"data.epoch", 1}, {"data.position", 96}, {"optimizer.step", 0}};
  EXPECT_EQ(imp.state.counters, counters);

  // The imported state saves and loads as a checkpoint (what nsa-train --resume reads).
  save_checkpoint(dir.file("imp.h5"), imp.state);
  expect_same_state(load_checkpoint(dir.file("imp.h5")), imp.state);
}

TEST(ExportImport, DenseF32) {
  check_export_import(dense_config(true), DType::f32);
  check_export_import(dense_config(false), DType::f32);
}
TEST(ExportImport, DenseBf16) { check_export_import(dense_config(false), DType::bf16); }
TEST(ExportImport, Moe) {
  check_export_import(moe_config(), DType::f32);
  check_export_import(moe_config(1, 1), DType::f32);
}
TEST(ExportImport, Nsa) { check_export_import(nsa_config(), DType::f32); }

TEST(ExportImport, TiedModelHasNoLmHead) {
  TempDir dir;
  const Config config = dense_config(true);
  const auto r = data_tools::export_safetensors(model_state(config), config, dir.file("e"), DType::f32, "c");
  for (const SafetensorsEntry& e : read_safetensors_header(r.safetensors_path).tensors) EXPECT_NE(e.name, "lm_head.weight");
  // A file that carries lm_head.weight equal to the embedding (some writers do) imports; one that differs not.
  SafetensorsContents c = load_safetensors(r.safetensors_path);
  auto with_head = c.tensors;
  with_head.emplace_back("lm_head.weight", c.tensors[0].second);
  save_safetensors(dir.file("h.safetensors"), with_head, DType::f32, c.header.metadata);
  const auto imp = data_tools::import_safetensors(dir.file("h.safetensors"), std::nullopt, 5);
  EXPECT_EQ(imp.state.step, 5);
  ASSERT_FALSE(imp.notes.empty());
  with_head.back().second = zeros(c.tensors[0].second.shape());
  save_safetensors(dir.file("h.safetensors"), with_head, DType::f32, c.header.metadata);
  expect_input_error([&] { data_tools::import_safetensors(dir.file("h.safetensors"), std::nullopt, std::nullopt); },
                     {"h.safetensors: lm_head.weight differs from model.embed_tokens.weight", "tie_embeddings"});
}

TEST(ExportImport, ImportRefusesFilesThatDoNotFit) {
  TempDir dir;
  const Config config = dense_config(false);
  const auto r = data_tools::export_safetensors(model_state(config), config, dir.file("e"), DType::f32, "c");
  const SafetensorsContents c = load_safetensors(r.safetensors_path);
  const std::string p = dir.file("x.safetensors");
  {  // a missing tensor
    auto t = c.tensors;
    t.erase(t.begin() + 3);
    save_safetensors(p, t, DType::f32, c.header.metadata);
    expect_input_error([&] { data_tools::import_safetensors(p, std::nullopt, std::nullopt); },
                       {"x.safetensors: missing tensor 'model.layers.0.self_attn.k_proj.weight'"});
  }
  {  // a wrong shape
    auto t = c.tensors;
    t[2].second = zeros({5, 16});
    save_safetensors(p, t, DType::f32, c.header.metadata);
    expect_input_error([&] { data_tools::import_safetensors(p, std::nullopt, std::nullopt); },
                       {"model.layers.0.self_attn.q_proj.weight: shape [5, 16], the config's model needs [16, 16]"});
  }
  {  // an extra tensor
    auto t = c.tensors;
    t.emplace_back("model.layers.7.mlp.up_proj.weight", zeros({2}));
    save_safetensors(p, t, DType::f32, c.header.metadata);
    expect_input_error([&] { data_tools::import_safetensors(p, std::nullopt, std::nullopt); },
                       {"tensor 'model.layers.7.mlp.up_proj.weight'", "not a parameter of the config's model"});
  }
  {  // no stored config and none given; then a --config file makes it import
    save_safetensors(p, c.tensors, DType::f32, {{"format", "pt"}});
    expect_input_error([&] { data_tools::import_safetensors(p, std::nullopt, std::nullopt); },
                       {"x.safetensors: no nsa-train config in the metadata", "--config"});
    std::ofstream(dir.file("m.yaml")) << to_yaml(config);
    const auto imp = data_tools::import_safetensors(p, dir.file("m.yaml"), std::nullopt);
    EXPECT_EQ(imp.state.step, 0);
    EXPECT_EQ(imp.state.counters[0], (std::pair<std::string, int64_t>{"rng.seed", 7}));
  }
  {  // a bad counter in the metadata
    Metadata m = c.header.metadata;
    m.emplace_back("nsa_train.counter.data.epoch2", "x1");
    save_safetensors(p, c.tensors, DType::f32, m);
    expect_input_error([&] { data_tools::import_safetensors(p, std::nullopt, std::nullopt); },
                       {"metadata nsa_train.counter.data.epoch2: expected an integer, got 'x1'"});
  }
  expect_input_error([&] { data_tools::import_safetensors(dir.path(), std::nullopt, std::nullopt); },
                     {"no model.safetensors in this directory"});
}

TEST(ExportImport, ExportRefusesStatesThatDoNotFitTheConfig) {
  TempDir dir;
  const Config config = dense_config(false);
  {
    CheckpointState s = model_state(config);
    s.params.erase(s.params.begin() + 2);
    expect_input_error([&] { data_tools::export_safetensors(s, config, dir.file("e"), DType::f32, "c.h5"); },
                       {"c.h5: /params: missing 'blocks.0.attn.wq.weight'"});
  }
  {
    CheckpointState s = model_state(config);
    s.params[1].second = zeros({3});
    expect_input_error([&] { data_tools::export_safetensors(s, config, dir.file("e"), DType::f32, "c.h5"); },
                       {"c.h5: /params/blocks.0.attn_norm.weight: shape [3], the stored config's model has [16]"});
  }
  {
    CheckpointState s = model_state(config);
    s.params.emplace_back("blocks.5.attn.wq.weight", zeros({3}));
    expect_input_error([&] { data_tools::export_safetensors(s, config, dir.file("e"), DType::f32, "c.h5"); },
                       {"c.h5: /params/blocks.5.attn.wq.weight: not a parameter"});
  }
}

TEST(ExportImport, LogitsOfTheImportEqualTheOriginal) {
  TempDir dir;
  for (const Config& config : {dense_config(false), moe_config()}) {
    const CheckpointState whole = model_state(config);
    data_tools::export_safetensors(whole, config, dir.file("e"), DType::f32, "c");
    const auto imp = data_tools::import_safetensors(dir.file("e"), std::nullopt, std::nullopt);
    const std::vector<int64_t> tokens = {1, 5, 9, 200, 3, 0, 77};
    const Tensor a = data_tools::model_logits(whole, config, tokens, "a");
    const Tensor b = data_tools::model_logits(imp.state, imp.config, tokens, "b");
    EXPECT_EQ(a.shape(), (Dims{7, config.model.vocab_size}));
    EXPECT_TRUE(equal_values(a, b));
    EXPECT_GT(item(sum(mul(a, a))), 0.0);
  }
  expect_input_error([&] { data_tools::model_logits(model_state(dense_config()), dense_config(), {1, 509}, "c"); },
                     {"token 509 outside the vocabulary [0, 509)"});
}

TEST(Npy, HeaderAndData) {
  TempDir dir;
  const Tensor v = from_vector<float>({1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f}, {2, 3});
  data_tools::write_npy(dir.file("a.npy"), v);
  std::ifstream in(dir.file("a.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  uint16_t n = 0;
  std::memcpy(&n, bytes.data() + 8, 2);
  EXPECT_EQ((10 + n) % 64, 0);
  const std::string header = bytes.substr(10, n);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(header.find("'shape': (2, 3)"), std::string::npos);
  EXPECT_EQ(header.back(), '\n');
  ASSERT_EQ(bytes.size(), 10u + n + 24);
  float data[6];
  std::memcpy(data, bytes.data() + 10 + n, 24);
  EXPECT_EQ(data[2], 3.25f);
  EXPECT_EQ(data[5], 8.0f);
}

}  // namespace
}  // namespace nsa::test
