// The config layer: defaults, every kind of error (message: one line naming the source, the key and, for a
// typo, the nearest key), --set overrides, the to_yaml → parse round trip, the shipped configs, and that
// docs/config.md lists every key with its default.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "config/config.h"
#include "config/values.h"

namespace nsa {
namespace {

const std::string kSource = "configs/x.yaml";

// The InputError message of parsing `yaml` (with `overrides`), or "" after recording a failure.
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, kSource, overrides);
  } catch (const InputError& e) {
    std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  ADD_FAILURE() << "no InputError for:\n" << yaml;
  return "";
}

void expect_contains(const std::string& message, const std::vector<std::string>& parts) {
  for (const std::string& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

// ---------------------------------------------------------------- defaults

TEST(ConfigDefaults, EmptyDocumentGivesTheStructDefaults) {
  Config parsed = parse_config("", "empty.yaml");
  Config expected;
  expected.source = "empty.yaml";
  EXPECT_EQ(parsed, expected);
  EXPECT_EQ(parsed.model.d_model, 128);
  EXPECT_EQ(parsed.attention.type, "full");
  EXPECT_EQ(parsed.optimizer.no_decay, (std::vector<std::string>{"norm", "bias", "embedding"}));
  EXPECT_EQ(parsed.seed, 1234u);
  // Only a comment, and empty sections, are defaults too.
  EXPECT_EQ(parse_config("# nothing\nmoe:\nmodel:\n", "empty.yaml"), expected);
}

TEST(ConfigDefaults, KeysCoverEverySectionOnce) {
  std::vector<std::string> keys = config_keys();
  for (const char* key :
       {"seed", "model.d_model", "model.v_head_dim", "attention.type", "attention.nsa.cmp_block",
        "attention.nsa.window", "moe.n_experts", "data.train", "optimizer.no_decay", "schedule.type",
        "training.seq_len", "checkpoint.keep", "parallel.tensor_parallel_size", "logging.progress"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "a key is listed twice";
  EXPECT_EQ(config_key_info().size(), keys.size());
}

TEST(ConfigDefaults, HeadDims) {
  ModelConfig model;
  EXPECT_EQ(model.resolved_head_dim(), 32);
  EXPECT_EQ(model.resolved_v_head_dim(), 32);
  model.head_dim = 48;
  EXPECT_EQ(model.resolved_v_head_dim(), 48);
  model.v_head_dim = 16;
  EXPECT_EQ(model.resolved_head_dim(), 48);
  EXPECT_EQ(model.resolved_v_head_dim(), 16);
}

// ---------------------------------------------------------------- errors in the file

TEST(ConfigErrors, UnknownKeySuggestsTheNearest) {
  expect_contains(error_of("model:\n  n_head: 4\n"),
                  {"configs/x.yaml: unknown key 'model.n_head' (did you mean 'model.n_heads'?)", "(line 2)"});
  expect_contains(
      error_of("attention:\n  nsa:\n    cmp_blok: 32\n"),
      {"configs/x.yaml: unknown key 'attention.nsa.cmp_blok'", "'attention.nsa.cmp_block'", "(line 3)"});
  // A key of another section, a key outside its section, a misspelt section.
  expect_contains(error_of("training:\n  lr: 0.1\n"),
                  {"unknown key 'training.lr' (did you mean 'optimizer.lr'?)"});
  expect_contains(error_of("d_model: 64\n"), {"unknown key 'd_model' (did you mean 'model.d_model'?)"});
  expect_contains(error_of("modle:\n  d_model: 64\n"), {"unknown key 'modle' (did you mean 'model'?)"});
  expect_contains(error_of("nsa:\n  window: 64\n"), {"unknown key 'nsa' (did you mean 'attention.nsa'?)"});
}

TEST(ConfigErrors, WrongTypes) {
  expect_contains(error_of("model:\n  n_heads: four\n"),
                  {"configs/x.yaml: model.n_heads: expected an integer, got 'four'", "(line 2)"});
  expect_contains(error_of("model:\n  n_heads: 4.0\n"), {"model.n_heads: expected an integer, got '4.0'"});
  expect_contains(error_of("model:\n  n_heads: 1.25e1\n"),
                  {"model.n_heads: expected an integer, got '1.25e1'"});
  expect_contains(error_of("model:\n  n_heads: 1e30\n"),
                  {"model.n_heads: expected an integer that fits 64 bits"});
  expect_contains(error_of("model:\n  n_heads: \"4\"\n"),
                  {"model.n_heads: expected an integer, got the quoted string"});
  expect_contains(error_of("optimizer:\n  lr: fast\n"), {"optimizer.lr: expected a number, got 'fast'"});
  expect_contains(error_of("optimizer:\n  lr: .nan\n"), {"optimizer.lr: expected a number, got '.nan'"});
  expect_contains(error_of("optimizer:\n  lr: 1e999\n"),
                  {"optimizer.lr: expected a number within double range"});
  expect_contains(error_of("model:\n  tie_embeddings: yes\n"),
                  {"model.tie_embeddings: expected true or false, got 'yes'"});
  expect_contains(error_of("seed: -1\n"), {"seed: expected a non-negative integer, got '-1'"});
  expect_contains(error_of("optimizer:\n  no_decay: norm\n"),
                  {"optimizer.no_decay: expected a list of values from {norm, bias, embedding}, like [norm]",
                   "got 'norm'"});
  expect_contains(error_of("optimizer:\n  no_decay: [[norm]]\n"),
                  {"optimizer.no_decay:", "got an item that is a list"});
  expect_contains(error_of("model:\n  n_heads:\n"), {"model.n_heads: expected an integer, got nothing"});
}

TEST(ConfigErrors, IntegersInScientificNotationOnlyWhenExact) {
  Config config =
      parse_config("training:\n  max_steps: 1e4\n  eval_interval: 2.5e3\n  eval_batches: 40e-1\n", kSource);
  EXPECT_EQ(config.training.max_steps, 10000);
  EXPECT_EQ(config.training.eval_interval, 2500);
  EXPECT_EQ(config.training.eval_batches, 4);
  EXPECT_EQ(parse_config("seed: 18446744073709551615\n", kSource).seed, std::numeric_limits<uint64_t>::max());
  // A float key takes an integer.
  EXPECT_EQ(parse_config("optimizer:\n  lr: 1\n", kSource).optimizer.lr, 1.0);
}

TEST(ConfigErrors, SectionsAndValuesSwapped) {
  expect_contains(
      error_of("model: 3\n"),
      {"configs/x.yaml: model: expected a section (keys such as model.vocab_size), got '3'", "(line 1)"});
  expect_contains(error_of("attention:\n  nsa: [1, 2]\n"),
                  {"attention.nsa: expected a section", "got a list"});
  expect_contains(error_of("model:\n  d_model:\n    size: 64\n"),
                  {"model.d_model: expected an integer, got a mapping"});
  expect_contains(error_of("- model\n- moe\n"),
                  {"configs/x.yaml: expected a mapping of sections", "got a list"});
}

TEST(ConfigErrors, InvalidEnums) {
  expect_contains(error_of("attention:\n  type: sparse\n"),
                  {"configs/x.yaml: attention.type: expected one of full, nsa, got 'sparse'", "(line 2)"});
  expect_contains(error_of("training:\n  device: gpu\n"),
                  {"training.device: expected one of auto, cpu, cuda, got 'gpu'"});
  expect_contains(error_of("training:\n  dtype: fp16\n"),
                  {"training.dtype: expected one of auto, f32, bf16"});
  expect_contains(error_of("checkpoint:\n  dtype: f16\n"), {"checkpoint.dtype: expected one of f32, bf16"});
  expect_contains(error_of("checkpoint:\n  resume: always\n"),
                  {"checkpoint.resume: expected one of never, auto"});
  expect_contains(error_of("logging:\n  progress: maybe\n"),
                  {"logging.progress: expected one of auto, on, off"});
  expect_contains(error_of("schedule:\n  type: linear\n"),
                  {"schedule.type: expected one of cosine, constant, wsd"});
  expect_contains(error_of("optimizer:\n  no_decay: [norm, weights]\n"),
                  {"optimizer.no_decay:", "got 'weights'"});
}

TEST(ConfigErrors, YamlSyntaxWithLine) {
  expect_contains(error_of("model:\n  d_model: 64\n   n_heads: 2\n"),
                  {"configs/x.yaml: invalid YAML at line 3"});
  expect_contains(error_of("optimizer:\n  no_decay: [norm, bias\n"),
                  {"configs/x.yaml: invalid YAML at line"});
  expect_contains(error_of("model:\n  d_model: 64\n  d_model: 96\n"),
                  {"configs/x.yaml: model.d_model: given twice (lines 2 and 3)"});
}

TEST(ConfigErrors, MissingFile) {
  try {
    load_config("/nonexistent/x.yaml");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/x.yaml: config file not found");
  }
  try {
    load_config(std::filesystem::temp_directory_path().string());
    FAIL() << "no error";
  } catch (const InputError& e) {
    expect_contains(e.what(), {"not a regular file"});
  }
}

// Each rule between keys, and each key's own bound: the message names the key (and the file and line).
TEST(ConfigErrors, CrossFieldAndRangeChecks) {
  struct Case {
    std::string yaml, key, fragment;
  };
  const std::vector<Case> cases = {
      {"model:\n  n_heads: 4\n  n_kv_heads: 3\n", "model.n_heads",
       "must be a multiple of model.n_kv_heads (3), got 4"},
      {"model:\n  d_model: 130\n", "model.d_model",
       "must be a multiple of model.n_heads (4) when model.head_dim is 0, got 130"},
      {"model:\n  vocab_size: 0\n", "model.vocab_size", "must be >= 1, got 0"},
      {"model:\n  head_dim: -1\n", "model.head_dim", "must be >= 0, got -1"},
      {"model:\n  norm_eps: 0\n", "model.norm_eps", "must be > 0, got 0.0"},
      {"training:\n  global_batch_size: 12\n", "training.global_batch_size",
       "must be a multiple of training.micro_batch_size (8), got 12"},
      {"training:\n  max_steps: 0\n", "training.max_steps", "must be >= 1"},
      {"training:\n  seq_len: -5\n", "training.seq_len", "must be >= 1"},
      {"training:\n  eval_interval: -1\n", "training.eval_interval", "must be >= 0"},
      {"attention:\n  type: nsa\n  nsa:\n    cmp_block: 40\n", "attention.nsa.cmp_block",
       "must be a multiple of attention.nsa.cmp_stride (16), got 40"},
      {"attention:\n  type: nsa\n  nsa:\n    slc_block: 72\n", "attention.nsa.slc_block",
       "must be a multiple of attention.nsa.cmp_stride (16), got 72"},
      {"attention:\n  type: nsa\n  nsa:\n    slc_top_n: 2\n", "attention.nsa.slc_top_n",
       "must be at least slc_init_blocks + slc_local_blocks (3), got 2"},
      {"attention:\n  nsa:\n    window: 0\n", "attention.nsa.window", "must be >= 1, got 0"},
      {"moe:\n  n_experts: 4\n  top_k: 5\n", "moe.top_k", "must be at most moe.n_experts (4), got 5"},
      {"moe:\n  n_experts: 4\n  top_k: 0\n", "moe.top_k", "must be >= 1, got 0"},
      {"moe:\n  n_experts: 4\n  first_k_dense: 5\n", "moe.first_k_dense",
       "must be at most model.n_layers (4), got 5"},
      {"moe:\n  n_experts: 4\n  expert_hidden: 0\n", "moe.expert_hidden", "must be >= 1, got 0"},
      {"checkpoint:\n  keep: 0\n", "checkpoint.keep", "must be >= 1, got 0"},
      {"checkpoint:\n  interval: -1\n", "checkpoint.interval", "must be >= 0, got -1"},
      {"checkpoint:\n  dir: \"\"\n", "checkpoint.dir", "must not be empty when checkpoint.interval > 0"},
      {"logging:\n  interval: 0\n", "logging.interval", "must be >= 1, got 0"},
      {"optimizer:\n  lr: 0\n", "optimizer.lr", "must be > 0, got 0.0"},
      {"optimizer:\n  eps: -1e-8\n", "optimizer.eps", "must be > 0, got -1.0e-08"},
      {"optimizer:\n  beta1: 1.0\n", "optimizer.beta1", "must be in [0, 1), got 1.0"},
      {"optimizer:\n  beta2: -0.1\n", "optimizer.beta2", "must be in [0, 1), got -0.1"},
      {"optimizer:\n  weight_decay: -0.1\n", "optimizer.weight_decay", "must be >= 0"},
      {"optimizer:\n  grad_clip: -1\n", "optimizer.grad_clip", "must be >= 0"},
      {"schedule:\n  warmup_steps: -1\n", "schedule.warmup_steps", "must be >= 0"},
      {"schedule:\n  min_lr_ratio: 1.5\n", "schedule.min_lr_ratio", "must be in [0, 1], got 1.5"},
      {"schedule:\n  decay_fraction: 0\n", "schedule.decay_fraction", "must be in (0, 1], got 0.0"},
      {"data:\n  train: \"\"\n", "data.train", "must not be empty"},
      {"parallel:\n  tensor_parallel_size: 0\n", "parallel.tensor_parallel_size", "must be >= 1, got 0"},
      {"parallel:\n  tensor_parallel_size: 4\n", "parallel.tensor_parallel_size",
       "must divide model.n_kv_heads (2) (a GQA group never spans ranks), got 4"},
      {"model:\n  n_kv_heads: 4\n  ffn_hidden: 386\nparallel:\n  tensor_parallel_size: 4\n",
       "parallel.tensor_parallel_size", "must divide model.ffn_hidden (386), got 4"},
      {"model:\n  n_heads: 8\n  n_kv_heads: 8\nmoe:\n  n_experts: 2\n  expert_hidden: 100\nparallel:\n  "
       "tensor_parallel_size: 8\n",
       "parallel.tensor_parallel_size", "must divide moe.expert_hidden (100), got 8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    std::string message = error_of(c.yaml);
    expect_contains(message, {kSource + ": " + c.key + ": " + c.fragment});
    if (c.yaml.find(c.key.substr(c.key.rfind('.') + 1) + ":") != std::string::npos)
      expect_contains(message, {"(line "});  // the key was written in the file: its line is named
  }
}

TEST(ConfigErrors, RulesOfSwitchedOffPartsDoNotApply) {
  // The same values pass while NSA / MoE is off, and with an explicit head_dim.
  EXPECT_NO_THROW(parse_config("attention:\n  nsa:\n    cmp_block: 40\n    slc_top_n: 2\n", kSource));
  EXPECT_NO_THROW(parse_config("moe:\n  top_k: 5\n  first_k_dense: 9\n", kSource));
  Config config = parse_config("model:\n  d_model: 130\n  head_dim: 32\n", kSource);
  EXPECT_EQ(config.model.resolved_head_dim(), 32);
  Config tp = parse_config("model:\n  n_kv_heads: 4\nparallel:\n  tensor_parallel_size: 4\n", kSource);
  EXPECT_EQ(tp.parallel.tensor_parallel_size, 4);
}

// ---------------------------------------------------------------- --set overrides

TEST(ConfigOverrides, ValuesOfEachType) {
  Config config =
      parse_config("model:\n  d_model: 64\n", kSource,
                   {"model.d_model=256", "optimizer.lr=1e-4", "model.tie_embeddings=false",
                    "optimizer.no_decay=[norm,bias]", "attention.type=nsa",
                    "data.val=", "data.train=shards/train_*.bin", "seed=7", " training.seq_len = 512 "});
  EXPECT_EQ(config.model.d_model, 256);
  EXPECT_EQ(config.optimizer.lr, 1e-4);
  EXPECT_FALSE(config.model.tie_embeddings);
  EXPECT_EQ(config.optimizer.no_decay, (std::vector<std::string>{"norm", "bias"}));
  EXPECT_EQ(config.attention.type, "nsa");
  EXPECT_EQ(config.data.val, "");
  EXPECT_EQ(config.data.train, "shards/train_*.bin");
  EXPECT_EQ(config.seed, 7u);
  EXPECT_EQ(config.training.seq_len, 512);
  EXPECT_TRUE(parse_config("", kSource, {"optimizer.no_decay=[]"}).optimizer.no_decay.empty());
}

TEST(ConfigOverrides, AppliedInOrderBeforeValidation) {
  EXPECT_EQ(parse_config("", kSource, {"model.n_layers=2", "model.n_layers=3"}).model.n_layers, 3);
  // The file's bad value is corrected by the override before the checks run.
  EXPECT_EQ(parse_config("optimizer:\n  lr: -1\n", kSource, {"optimizer.lr=0.5"}).optimizer.lr, 0.5);
  // A bad value from an override is reported with the override.
  expect_contains(error_of("", {"training.max_steps=0"}),
                  {"--set training.max_steps=0: training.max_steps: must be >= 1, got 0"});
}

TEST(ConfigOverrides, Errors) {
  EXPECT_EQ(error_of("", {"model.n_head=4"}),
            "--set model.n_head=4: unknown key 'model.n_head' (did you mean 'model.n_heads'?)");
  expect_contains(error_of("", {"model.d_model"}), {"--set model.d_model: expected key.path=value"});
  expect_contains(error_of("", {"=5"}), {"--set =5: expected key.path=value"});
  expect_contains(error_of("", {"model=3"}),
                  {"--set model=3: model: is a section; set one of its keys, e.g. model.vocab_size"});
  EXPECT_EQ(error_of("", {"model.n_heads=four"}),
            "--set model.n_heads=four: model.n_heads: expected an integer, got 'four'");
  expect_contains(error_of("", {"optimizer.no_decay=[norm"}),
                  {"--set optimizer.no_decay=[norm: optimizer.no_decay: the value is not valid YAML"});
  expect_contains(error_of("", {"attention.type=sparse"}),
                  {"--set attention.type=sparse: attention.type: expected one of full, nsa, got 'sparse'"});
}

// ---------------------------------------------------------------- round trip

TEST(ConfigRoundTrip, DefaultsAndAwkwardValues) {
  Config defaults;
  EXPECT_EQ(parse_config(to_yaml(defaults), ""), defaults) << to_yaml(defaults);

  Config c;
  c.source = "round.yaml";
  c.seed = std::numeric_limits<uint64_t>::max();
  c.model.ffn_hidden = int64_t{1} << 40;
  c.model.v_head_dim = 16;
  c.model.rope_theta = 1e6;
  c.model.init_std = 1.0 / 3.0;
  c.model.norm_eps = std::numeric_limits<double>::denorm_min();
  c.optimizer.lr = 0.1 + 0.2;  // 0.30000000000000004
  c.optimizer.beta2 = 1.0 - 1e-12;
  c.optimizer.weight_decay = 0.0;
  c.optimizer.no_decay = {};
  c.schedule.type = "wsd";
  c.attention.type = "nsa";
  c.attention.nsa.separate_kv = false;
  c.data.train = "dir: \"quoted\" #not-a-comment \\ back\tslash\n é";
  c.data.val = "123";  // a string that looks like a number stays a string
  c.logging.dir = "true";
  c.checkpoint.dir = "";
  c.checkpoint.interval = 0;
  std::string yaml = to_yaml(c);
  Config back = parse_config(yaml, "round.yaml");
  EXPECT_EQ(back, c) << yaml;
  EXPECT_EQ(back.optimizer.lr, 0.1 + 0.2);
  EXPECT_EQ(back.data.train, c.data.train);
  EXPECT_EQ(to_yaml(back), yaml);
  // Every key is written: one line per key plus one per section header.
  for (const std::string& key : config_keys())
    EXPECT_NE(yaml.find(key.substr(key.rfind('.') + 1) + ": "), std::string::npos) << key;
  EXPECT_NE(yaml.find("  nsa:\n    cmp_block: 32\n"), std::string::npos) << yaml;
}

TEST(ConfigRoundTrip, EveryDoubleReadsBackExactly) {
  std::mt19937_64 rng(1);
  int mismatches = 0;
  for (int i = 0; i < 100000; ++i) {
    double value = std::bit_cast<double>(rng());
    if (!std::isfinite(value)) continue;
    std::string text = config_detail::format_number(value);
    double back = config_detail::parse_number(text);
    if (std::bit_cast<uint64_t>(back) != std::bit_cast<uint64_t>(value) && ++mismatches < 5)
      ADD_FAILURE() << text << " read back as " << back;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(config_detail::format_number(10000.0), "10000.0");
  EXPECT_EQ(config_detail::format_number(3e-3), "0.003");
  EXPECT_EQ(config_detail::format_number(0.1), "0.1");
  EXPECT_EQ(config_detail::format_number(1e-8), "1.0e-08");
  EXPECT_EQ(config_detail::format_number(-2.5e20), "-2.5e+20");
}

// ---------------------------------------------------------------- shipped configs and docs

std::string source_path(const std::string& relative) { return std::string(NSA_SOURCE_DIR) + "/" + relative; }

TEST(ConfigShipped, EveryConfigLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_path("configs"))) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    std::ifstream file(entry.path());
    std::string first_line;
    std::getline(file, first_line);
    EXPECT_TRUE(first_line.starts_with("# ")) << "a config starts with a comment saying what it is for";
    Config config = load_config(entry.path().string());
    EXPECT_EQ(config.source, entry.path().string());
    EXPECT_EQ(parse_config(to_yaml(config), config.source), config);
    ++count;
  }
  EXPECT_GE(count, 4);
}

TEST(ConfigShipped, Values) {
  Config tiny = load_config(source_path("configs/tiny.yaml"));  // the Brown corpus in GPT-2 tokens
  EXPECT_EQ(tiny.model.vocab_size, 50304);                      // >= GPT-2's 50257
  EXPECT_EQ(tiny.model.d_model, 64);
  EXPECT_FALSE(tiny.model.tie_embeddings);
  EXPECT_EQ(tiny.training.seq_len, 128);
  EXPECT_EQ(tiny.training.device, "auto");  // the GPU when present (README command 1)
  EXPECT_EQ(tiny.optimizer.lr, 6e-3);
  EXPECT_EQ(tiny.data.train, "data/brown/train_*.bin");
  EXPECT_EQ(tiny.checkpoint.dir, "runs/tiny/checkpoints");

  Config synth = load_config(source_path("configs/tiny-synth.yaml"));  // the synthetic corpus
  EXPECT_EQ(synth.model.vocab_size, 512);
  EXPECT_EQ(synth.model.ffn_hidden, 384);
  EXPECT_EQ(synth.training.seq_len, 256);
  EXPECT_EQ(synth.optimizer.lr, 3e-3);
  EXPECT_EQ(synth.data.train, "data/tiny/train_*.bin");
  EXPECT_EQ(synth.checkpoint.dir, "runs/tiny-synth/checkpoints");

  Config dense = load_config(source_path("configs/dense-125m.yaml"));
  EXPECT_EQ(dense.model.vocab_size, 50304);
  EXPECT_EQ(dense.model.n_kv_heads, 4);
  EXPECT_EQ(dense.training.global_batch_size / dense.training.micro_batch_size, 2);
  EXPECT_EQ(dense.checkpoint.interval, 0);
  EXPECT_EQ(dense.training.device, "cuda");
  EXPECT_EQ(dense.data.train, "data/tiny/train_*.bin");

  Config moe = load_config(source_path("configs/moe-1b.yaml"));
  EXPECT_TRUE(moe.moe.enabled());
  EXPECT_EQ(moe.moe.n_experts, 16);
  EXPECT_EQ(moe.moe.first_k_dense, 1);
  EXPECT_EQ(moe.training.seq_len, 2048);
  EXPECT_EQ(moe.optimizer.lr, 4e-4);

  Config paper = load_config(source_path("configs/nsa-paper-27b.yaml"));
  EXPECT_EQ(paper.attention.type, "nsa");
  EXPECT_EQ(paper.model.resolved_head_dim(), 192);
  EXPECT_EQ(paper.model.resolved_v_head_dim(), 128);
  EXPECT_EQ(paper.model.n_heads / paper.model.n_kv_heads, 16);
  EXPECT_EQ(paper.moe.n_experts, 72);
  EXPECT_EQ(paper.moe.n_shared_experts, 2);
  EXPECT_EQ(paper.moe.top_k, 6);
  const NsaConfig& nsa = paper.attention.nsa;
  EXPECT_EQ(std::vector<int64_t>({nsa.cmp_block, nsa.cmp_stride, nsa.slc_block, nsa.slc_top_n, nsa.window}),
            std::vector<int64_t>({32, 16, 64, 16, 512}));
  EXPECT_EQ(paper.training.seq_len, 8192);
}

TEST(ConfigDocs, EveryKeyIsDocumentedWithItsDefault) {
  std::ifstream file(source_path("docs/config.md"));
  ASSERT_TRUE(file) << "docs/config.md missing";
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  for (const ConfigKeyInfo& info : config_key_info()) {
    // The reference tables have one row per key: | `key` | type | `default` | ... |
    std::string row_start = "| `" + info.key + "` |";
    auto row = std::find_if(lines.begin(), lines.end(),
                            [&](const std::string& l) { return l.starts_with(row_start); });
    ASSERT_NE(row, lines.end()) << info.key << " has no row in docs/config.md";
    expect_contains(*row, {"| " + info.type, "`" + info.default_value + "`"});
  }
}

}  // namespace
}  // namespace nsa
