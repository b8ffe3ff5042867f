// The resolved configuration of a run: one struct per YAML section, every field with its default. The
// YAML schema (key names, types, defaults, checks, documentation) lives in config.cpp; docs/config.md
// documents it key by key. A field here is the single source of a value: nothing in the trainer, the model
// or the kernels hard-codes a number that has a key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace nsa {

struct ModelConfig {
  int64_t vocab_size = 512;
  int64_t d_model = 128;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 2;
  int64_t head_dim = 0;    // 0: d_model / n_heads
  int64_t v_head_dim = 0;  // 0: same as head_dim
  int64_t ffn_hidden = 384;  // dense SwiGLU hidden size
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_embeddings = true;
  double init_std = 0.02;  // normal init of weights; output projections scaled by 1/sqrt(2·n_layers)

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
  int64_t resolved_v_head_dim() const { return v_head_dim > 0 ? v_head_dim : resolved_head_dim(); }

  bool operator==(const ModelConfig&) const = default;
};

// Native Sparse Attention settings (used when attention.type == "nsa"; see docs/nsa.md).
struct NsaConfig {
  int64_t cmp_block = 32;     // l: compression block length
  int64_t cmp_stride = 16;    // d: stride between compression blocks
  int64_t slc_block = 64;     // l': selection block length
  int64_t slc_top_n = 16;     // n: selected blocks per query (forced ones included)
  int64_t slc_init_blocks = 1;   // always-selected leading blocks
  int64_t slc_local_blocks = 2;  // always-selected most recent blocks
  int64_t window = 512;       // w: sliding window length
  bool separate_kv = true;    // separate K/V projections per branch (the paper) or shared
  int64_t cmp_hidden = 0;     // hidden width of the compression MLP φ; 0: the head dim

  bool operator==(const NsaConfig&) const = default;
};

struct AttentionConfig {
  std::string type = "full";  // full | nsa
  NsaConfig nsa;

  bool operator==(const AttentionConfig&) const = default;
};

struct MoeConfig {
  int64_t n_experts = 0;  // 0: dense SwiGLU MLP in every layer
  int64_t top_k = 2;
  int64_t n_shared_experts = 0;
  int64_t expert_hidden = 256;
  int64_t first_k_dense = 0;  // the first k layers keep the dense MLP
  double aux_loss_weight = 0.01;
  bool normalize_topk = true;  // renormalise the k selected router probabilities to sum to 1

  bool enabled() const { return n_experts > 0; }

  bool operator==(const MoeConfig&) const = default;
};

struct DataConfig {
  std::string train = "data/tiny/train_*.bin";  // glob of llm.c shards
  std::string val = "data/tiny/val_*.bin";      // glob; empty: no evaluation

  bool operator==(const DataConfig&) const = default;
};

struct OptimizerConfig {
  double lr = 3e-3;  // peak learning rate
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // global-norm clip; 0 disables
  std::vector<std::string> no_decay = {"norm", "bias", "embedding"};  // parameter kinds without decay

  bool operator==(const OptimizerConfig&) const = default;
};

struct ScheduleConfig {
  std::string type = "cosine";  // cosine | constant | wsd
  int64_t warmup_steps = 20;
  double min_lr_ratio = 0.1;    // final lr = lr · min_lr_ratio (cosine, wsd)
  double decay_fraction = 0.2;  // wsd: the last fraction of max_steps decays linearly

  bool operator==(const ScheduleConfig&) const = default;
};

struct TrainingConfig {
  int64_t max_steps = 200;
  int64_t micro_batch_size = 8;
  int64_t global_batch_size = 8;  // sequences per optimizer step (all ranks); a multiple of micro × dp
  int64_t seq_len = 128;
  std::string device = "auto";  // auto | cpu | cuda
  std::string dtype = "auto";   // compute dtype: auto (bf16 on cuda, f32 on cpu) | f32 | bf16
  int64_t eval_interval = 50;   // 0: no evaluation
  int64_t eval_batches = 4;     // micro-batches per evaluation

  bool operator==(const TrainingConfig&) const = default;
};

struct CheckpointConfig {
  std::string dir = "runs/tiny/checkpoints";
  int64_t interval = 100;  // steps; 0 disables checkpointing
  int64_t keep = 2;        // the newest `keep` checkpoints are kept
  std::string resume = "never";  // never | auto (the newest in dir, if any)
  std::string dtype = "f32";     // parameter storage: f32 | bf16

  bool operator==(const CheckpointConfig&) const = default;
};

struct ParallelConfig {
  int64_t tensor_parallel_size = 1;
  std::string backend = "auto";  // communicators: auto (nccl on cuda, mpi on cpu), mpi, nccl
  bool zero1 = false;            // shard the AdamW moments over the data-parallel ranks (ZeRO stage 1)
  double bucket_mb = 25.0;       // size of the gradient all-reduce buckets

  bool operator==(const ParallelConfig&) const = default;
};

struct LoggingConfig {
  std::string dir = "runs/tiny";  // run directory: metrics.jsonl, the resolved config
  int64_t interval = 10;          // steps between log lines
  std::string progress = "auto";  // auto (when stdout is a terminal) | on | off

  bool operator==(const LoggingConfig&) const = default;
};

struct Config {
  uint64_t seed = 1234;
  ModelConfig model;
  AttentionConfig attention;
  MoeConfig moe;
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainingConfig training;
  CheckpointConfig checkpoint;
  ParallelConfig parallel;
  LoggingConfig logging;
  std::string source;  // the file it was read from ("" for defaults), for messages

  bool operator==(const Config&) const = default;  // compares `source` too
};

// Reads `path`, applies `overrides` ("key.path=value", in order), checks every key and value.
// Throws InputError with a one-line message naming the file and key (and the nearest valid key on a typo).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from YAML text (tests); `source` names it in messages.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// The resolved config as YAML (every key, defaults included): stored in checkpoints and run directories,
// and loadable again by parse_config.
std::string to_yaml(const Config& config);
// Every valid dotted key (for docs and tests).
std::vector<std::string> config_keys();

// One row of the schema, as text (docs/config.md lists the same rows; a test keeps them in step).
struct ConfigKeyInfo {
  std::string key;            // "model.d_model"
  std::string type;           // "int", "float", "bool", "string", "enum", "list"
  std::string allowed;        // enum / list values, "full, nsa"; empty for the other types
  std::string constraint;     // the check on the value alone, "> 0", "in [0, 1)"; empty when none
  std::string default_value;  // the default as to_yaml writes it
  std::string doc;            // one line
};
std::vector<ConfigKeyInfo> config_key_info();

}  // namespace nsa
