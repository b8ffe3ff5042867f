// The Hugging Face side of nsa-ckpt export-safetensors / import-safetensors: tensor names in the Llama /
// Mixtral layout, the config.json that transformers reads, and whether transformers can load a model.
//
// Names (docs/tools.md has the full table): embed.weight <-> model.embed_tokens.weight, blocks.<i>.* <->
// model.layers.<i>.* (attn.w{q,k,v,o} <-> self_attn.{q,k,v,o}_proj, attn_norm / mlp_norm <->
// input_layernorm / post_attention_layernorm, mlp.w_{gate,up,down} <-> mlp.{gate,up,down}_proj, MoE as
// Mixtral's block_sparse_moe: router <-> gate, experts.<e>.w_{gate,down,up} <-> experts.<e>.w{1,2,3}),
// final_norm.weight <-> model.norm.weight, lm_head.weight as is. Tensors transformers has no module for
// keep nsa-train names under the layer: NSA's branches as self_attn.nsa.<name>, the shared experts as
// block_sparse_moe.shared_experts.{gate,up,down}_proj. No tensor is permuted: our Linear weights are
// [out, in] like PyTorch's and our RoPE pairs dims i and i + d/2 like transformers' rotate_half.
#pragma once

#include <string>

#include "config/config.h"
#include "core/dtype.h"

namespace nsa::data_tools {

// Our parameter name -> the exported name; InputError for a name no rule covers.
std::string hf_name(const std::string& name);
// The exported name -> our parameter name; InputError "<source>: ..." for a name no rule covers.
std::string nsa_name(const std::string& hf, const std::string& source);

struct HfArchitecture {
  std::string name;        // LlamaForCausalLM, MixtralForCausalLM, or NsaTrainForCausalLM
  std::string model_type;  // llama, mixtral, nsa_train
  bool loadable = false;   // transformers can load and run it as is
  std::string why_not;     // when not loadable: the features transformers lacks
};

// Dense full-attention models map to Llama, MoE ones to Mixtral (softmax router, renormalised top-k, no
// shared experts, every layer MoE); anything else (NSA attention, shared experts, dense first layers,
// unnormalised top-k, v_head_dim != head_dim) is exported with nsa-train names as NsaTrainForCausalLM.
HfArchitecture hf_architecture(const Config& config);

// config.json for `config` (pretty-printed): the fields transformers' LlamaConfig / MixtralConfig read,
// plus, for NsaTrainForCausalLM, the settings transformers has no field for. `dtype`: f32 or bf16.
std::string hf_config_json(const Config& config, DType dtype);

}  // namespace nsa::data_tools
