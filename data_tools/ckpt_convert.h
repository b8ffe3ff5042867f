// The conversions behind nsa-ckpt (docs/tools.md): export to safetensors + config.json, import back into a
// resumable checkpoint, and our model's logits on given tokens (for comparing with transformers). Library
// functions, so the tests call them directly; ckpt_main.cpp is the command line around them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "hf_format.h"
#include "io/checkpoint.h"

namespace nsa::data_tools {

// safetensors __metadata__ keys nsa-ckpt writes (besides "format": "pt", which transformers requires).
inline constexpr const char* kMetaConfig = "nsa_train.config";          // the resolved YAML config
inline constexpr const char* kMetaStep = "nsa_train.step";              // decimal
inline constexpr const char* kMetaCounterPrefix = "nsa_train.counter.";  // + counter name: decimal value

struct ExportResult {
  HfArchitecture architecture;
  std::string safetensors_path, config_path;
  int64_t tensors = 0, bytes = 0;  // bytes: the safetensors file's size
};

// Writes <out_dir>/model.safetensors (parameters under Hugging Face names, stored as `dtype`: f32 or bf16)
// and <out_dir>/config.json; creates out_dir. A tied model gets no lm_head.weight (transformers ties it).
// `source` names the checkpoint in messages.
ExportResult export_safetensors(const CheckpointState& whole, const Config& config, const std::string& out_dir,
                                DType dtype, const std::string& source);

struct ImportResult {
  CheckpointState state;  // parameters, zero AdamW moments (optimizer.step 0), counters, step
  Config config;
  std::vector<std::string> notes;  // what was assumed or dropped, one line each
};

// Reads a safetensors file (or a directory holding model.safetensors) exported by nsa-ckpt or written by
// transformers for a Llama/Mixtral model. The model config is `config_path` when given, else the one
// stored in the file's metadata. Every parameter of that model must be present with its shape and nothing
// else may be (a tied model's lm_head.weight is dropped when it equals the embedding). `step` overrides
// the stored step. Counters come from the metadata (defaults: seed from the config, data cursor at 0).
ImportResult import_safetensors(const std::string& input, const std::optional<std::string>& config_path,
                                std::optional<int64_t> step);

// Our model (built from `config`, parameters from `whole`) on one sequence: f32 logits [tokens, vocab], on
// the CPU. Tokens must lie in [0, vocab).
Tensor model_logits(const CheckpointState& whole, const Config& config, const std::vector<int64_t>& tokens,
                    const std::string& source);

// Writes a 2-D f32 tensor as a NumPy .npy file (format 1.0, little-endian '<f4', C order).
void write_npy(const std::string& path, const Tensor& values);

}  // namespace nsa::data_tools
