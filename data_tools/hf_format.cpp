#include "hf_format.h"

#include <utility>

#include "core/error.h"
#include "io/json.h"

namespace nsa::data_tools {

namespace {

// (ours, exported) suffixes under "blocks.<i>." / "model.layers.<i>.".
constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"mlp_norm.weight", "post_attention_layernorm.weight"},
    {"attn.wq.weight", "self_attn.q_proj.weight"},
    {"attn.wk.weight", "self_attn.k_proj.weight"},
    {"attn.wv.weight", "self_attn.v_proj.weight"},
    {"attn.wo.weight", "self_attn.o_proj.weight"},
    {"mlp.w_gate.weight", "mlp.gate_proj.weight"},
    {"mlp.w_up.weight", "mlp.up_proj.weight"},
    {"mlp.w_down.weight", "mlp.down_proj.weight"},
    {"moe.router.weight", "block_sparse_moe.gate.weight"},
    {"moe.shared.w_gate.weight", "block_sparse_moe.shared_experts.gate_proj.weight"},
    {"moe.shared.w_up.weight", "block_sparse_moe.shared_experts.up_proj.weight"},
    {"moe.shared.w_down.weight", "block_sparse_moe.shared_experts.down_proj.weight"},
};
// Mixtral's expert weights: w1 = gate, w2 = down, w3 = up.
constexpr std::pair<const char*, const char*> kExpertNames[] = {
    {"w_gate.weight", "w1.weight"},
    {"w_down.weight", "w2.weight"},
    {"w_up.weight", "w3.weight"},
};
// Tensors outside the layers.
constexpr std::pair<const char*, const char*> kTopNames[] = {
    {"embed.weight", "model.embed_tokens.weight"},
    {"final_norm.weight", "model.norm.weight"},
    {"lm_head.weight", "lm_head.weight"},
};
constexpr const char* kOurNsa = "attn.nsa.";
constexpr const char* kHfNsa = "self_attn.nsa.";
constexpr const char* kOurExperts = "moe.experts.";
constexpr const char* kHfExperts = "block_sparse_moe.experts.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool is_index(const std::string& s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos &&
         (s.size() == 1 || s[0] != '0');
}

// "<prefix><digits>.<rest>" -> (digits, rest); false when `name` is not of that form.
bool split_index(const std::string& name, const std::string& prefix, std::string* index, std::string* rest) {
  if (!starts_with(name, prefix)) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  *index = name.substr(prefix.size(), dot - prefix.size());
  *rest = name.substr(dot + 1);
  return is_index(*index) && !rest->empty();
}

// Maps `rest` (the part of a name under a layer) through the rules, ours -> exported when `forward`.
bool map_layer_rest(const std::string& rest, bool forward, std::string* out) {
  for (const auto& [ours, hf] : kLayerNames) {
    if (rest == (forward ? ours : hf)) return *out = forward ? hf : ours, true;
  }
  const std::string from_nsa = forward ? kOurNsa : kHfNsa, to_nsa = forward ? kHfNsa : kOurNsa;
  if (starts_with(rest, from_nsa) && rest.size() > from_nsa.size()) {
    return *out = to_nsa + rest.substr(from_nsa.size()), true;
  }
  std::string e, tail;
  if (split_index(rest, forward ? kOurExperts : kHfExperts, &e, &tail)) {
    for (const auto& [ours, hf] : kExpertNames) {
      if (tail == (forward ? ours : hf)) {
        return *out = std::string(forward ? kHfExperts : kOurExperts) + e + "." + (forward ? hf : ours), true;
      }
    }
  }
  return false;
}

bool map_name(const std::string& name, bool forward, std::string* out) {
  for (const auto& [ours, hf] : kTopNames) {
    if (name == (forward ? ours : hf)) return *out = forward ? hf : ours, true;
  }
  std::string index, rest, mapped;
  const std::string from = forward ? "blocks." : "model.layers.", to = forward ? "model.layers." : "blocks.";
  if (split_index(name, from, &index, &rest) && map_layer_rest(rest, forward, &mapped)) {
    return *out = to + index + "." + mapped, true;
  }
  return false;
}

}  // namespace

std::string hf_name(const std::string& name) {
  std::string out;
  if (!map_name(name, true, &out)) {
    throw InputError(str("export: no Hugging Face name for parameter '", name, "'"));
  }
  return out;
}

std::string nsa_name(const std::string& hf, const std::string& source) {
  std::string out;
  if (!map_name(hf, false, &out)) {
    throw InputError(str(source, ": tensor '", hf, "' is not a Llama/Mixtral or nsa-train exported name ",
                         "(see docs/tools.md for the names import-safetensors reads)"));
  }
  return out;
}

HfArchitecture hf_architecture(const Config& config) {
  std::string why;
  auto add = [&](const std::string& reason) { why += (why.empty() ? "" : "; ") + reason; };
  const ModelConfig& m = config.model;
  const bool moe = config.moe.enabled();
  if (config.attention.type == "nsa") add("NSA attention");
  if (m.resolved_v_head_dim() != m.resolved_head_dim()) add("v_head_dim differs from head_dim");
  if (moe) {
    if (config.moe.n_shared_experts > 0) add("shared experts");
    if (config.moe.first_k_dense > 0) add("dense first layers (moe.first_k_dense)");
    if (!config.moe.normalize_topk) add("unnormalised top-k weights (moe.normalize_topk: false)");
  }
  if (!why.empty()) return {"NsaTrainForCausalLM", "nsa_train", false, why};
  return moe ? HfArchitecture{"MixtralForCausalLM", "mixtral", true, ""}
             : HfArchitecture{"LlamaForCausalLM", "llama", true, ""};
}

std::string hf_config_json(const Config& config, DType dtype) {
  const HfArchitecture arch = hf_architecture(config);
  const ModelConfig& m = config.model;
  const MoeConfig& moe = config.moe;
  json::Writer w(/*pretty=*/true);
  w.begin_object();
  w.key("architectures").begin_array().value(arch.name).end_array();
  w.key("model_type").value(arch.model_type);
  w.key("vocab_size").value(m.vocab_size);
  w.key("hidden_size").value(m.d_model);
  // Llama: the dense MLP's width; Mixtral: each expert's.
  w.key("intermediate_size").value(moe.enabled() && arch.model_type == "mixtral" ? moe.expert_hidden : m.ffn_hidden);
  w.key("num_hidden_layers").value(m.n_layers);
  w.key("num_attention_heads").value(m.n_heads);
  w.key("num_key_value_heads").value(m.n_kv_heads);
  w.key("head_dim").value(m.resolved_head_dim());
  w.key("hidden_act").value("silu");
  w.key("max_position_embeddings").value(config.training.seq_len);
  w.key("rms_norm_eps").value(m.norm_eps);
  w.key("rope_theta").value(m.rope_theta);
  // transformers >= 5 reads the RoPE settings from here (older versions ignore the key).
  w.key("rope_parameters").begin_object().key("rope_type").value("default").key("rope_theta").value(m.rope_theta).end_object();
  w.key("tie_word_embeddings").value(m.tie_embeddings);
  w.key("attention_bias").value(false);
  w.key("attention_dropout").value(0.0);
  w.key("initializer_range").value(m.init_std);
  w.key("torch_dtype").value(dtype == DType::bf16 ? "bfloat16" : "float32");
  w.key("use_cache").value(true);
  if (arch.model_type == "llama") w.key("mlp_bias").value(false);
  if (moe.enabled()) {
    w.key("num_local_experts").value(moe.n_experts);
    w.key("num_experts_per_tok").value(moe.top_k);
    w.key("router_aux_loss_coef").value(moe.aux_loss_weight);
    w.key("output_router_logits").value(false);
    if (arch.model_type == "mixtral") {
      w.key("router_jitter_noise").value(0.0);
      w.key("sliding_window").null();
    }
  }
  if (!arch.loadable) {
    w.key("nsa_train_note").value("not loadable by transformers: " + arch.why_not +
                                  "; tensor names and settings: nsa-train docs/tools.md");
    if (moe.enabled()) {
      w.key("moe_intermediate_size").value(moe.expert_hidden);
      w.key("n_shared_experts").value(moe.n_shared_experts);
      w.key("first_k_dense_replace").value(moe.first_k_dense);
      w.key("norm_topk_prob").value(moe.normalize_topk);
    }
    w.key("v_head_dim").value(m.resolved_v_head_dim());
    if (config.attention.type == "nsa") {
      const NsaConfig& n = config.attention.nsa;
      w.key("nsa").begin_object();
      w.key("cmp_block").value(n.cmp_block).key("cmp_stride").value(n.cmp_stride);
      w.key("slc_block").value(n.slc_block).key("slc_top_n").value(n.slc_top_n);
      w.key("slc_init_blocks").value(n.slc_init_blocks).key("slc_local_blocks").value(n.slc_local_blocks);
      w.key("window").value(n.window).key("separate_kv").value(n.separate_kv).key("cmp_hidden").value(n.cmp_hidden);
      w.end_object();
    }
  }
  w.end_object();
  return w.str() + "\n";
}

}  // namespace nsa::data_tools
