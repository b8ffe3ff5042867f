// Tests of the training loop on CPU with a very small model (d_model 32, 2 layers, seq_len 32) on a small
// synthetic corpus generated once per suite: exact resume from a checkpoint (dense, MoE, accumulation),
// gradient accumulation against one large micro-batch, checkpoint rotation, the loss falling, the lines of
// metrics.jsonl, and the error when a checkpoint belongs to a different model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "io/checkpoint_dir.h"
#include "io/io_test_util.h"
#include "synth.h"
#include "train/trainer.h"

namespace nsa::train {
namespace {

namespace fs = std::filesystem;
using nsa::test::expect_input_error;
using nsa::test::TempDir;
using Losses = std::vector<std::pair<int64_t, double>>;

class TrainerTest : public ::testing::Test {
 protected:
  // The synthetic shards shared by every test of the suite.
  static void SetUpTestSuite() {
    corpus_dir_ = std::make_unique<TempDir>();
    data_tools::SynthOptions options;
    options.train_tokens = 120'000;  // 3636 windows of 33 tokens: no test reaches the end of an epoch
    options.val_tokens = 10'000;
    options.shard_tokens = 60'000;
    options.vocab_size = 512;
    options.seed = 3;
    corpus_ = data_tools::run_synth(options, corpus_dir_->path());
  }
  static void TearDownTestSuite() { corpus_dir_.reset(); }

  // The small model on the suite's corpus, run directory `run_dir` (checkpoints in run_dir/ck), logging at
  // every step, no evaluation and no checkpoints unless `overrides` ("key=value", applied last) ask.
  static Config small_config(const std::string& run_dir, const std::vector<std::string>& overrides = {}) {
    const std::string& data = corpus_dir_->path();
    const std::string yaml =
        str("seed: 11\n"
            "model: {vocab_size: 512, d_model: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden: 64}\n"
            "moe: {expert_hidden: 32}\n"
            "data: {train: '",
            data, "/train_*.bin', val: '", data, "/val_*.bin'}\n",
            "optimizer: {lr: 1.0e-2}\n"
            "schedule: {type: cosine, warmup_steps: 2}\n"
            "training: {max_steps: 8, micro_batch_size: 4, global_batch_size: 4, seq_len: 32, device: cpu,\n"
            "           dtype: f32, eval_interval: 0, eval_batches: 2}\n"
            "checkpoint: {dir: '",
            run_dir,
            "/ck', interval: 0, keep: 100}\n"
            "logging: {dir: '",
            run_dir, "', interval: 1, progress: off}\n");
    return parse_config(yaml, "small_config", overrides);
  }

  static TrainSummary train(const Config& config, bool resume = false) {
    Trainer trainer(config, TrainOptions{.resume = resume, .quiet = true});
    return trainer.run();
  }

  // Run A: 8 steps with a checkpoint every 4. Run B: a fresh run directory holding only A's step-4
  // checkpoint, resumed to step 8. The resumed steps must reproduce A's losses bit for bit: parameters,
  // AdamW moments and step count, the data cursor and the schedule all come back exactly.
  static void expect_exact_resume(const std::vector<std::string>& overrides);

  static std::unique_ptr<TempDir> corpus_dir_;
  static data_tools::SynthSummary corpus_;
};

std::unique_ptr<TempDir> TrainerTest::corpus_dir_;
data_tools::SynthSummary TrainerTest::corpus_;

// The losses of steps first..last (inclusive).
Losses losses_between(const Losses& all, int64_t first, int64_t last) {
  Losses out;
  for (const auto& [step, loss] : all) {
    if (step >= first && step <= last) out.emplace_back(step, loss);
  }
  return out;
}

void print_losses(const char* name, const Losses& losses) {
  std::printf("  %s:", name);
  for (const auto& [step, loss] : losses) std::printf(" %lld:%.9g", static_cast<long long>(step), loss);
  std::printf("\n");
}

std::vector<int64_t> steps_of(const Losses& losses) {
  std::vector<int64_t> out;
  for (const auto& [step, loss] : losses) out.push_back(step);
  return out;
}

void TrainerTest::expect_exact_resume(const std::vector<std::string>& overrides) {
  TempDir dir_a, dir_b;
  std::vector<std::string> a_overrides = overrides;
  a_overrides.push_back("checkpoint.interval=4");
  const TrainSummary a = train(small_config(dir_a.path(), a_overrides));
  ASSERT_EQ(steps_of(a.losses), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  const std::string step4 = checkpoint_path(dir_a.path() + "/ck", 4);
  ASSERT_TRUE(fs::exists(step4)) << step4;

  fs::create_directories(dir_b.path() + "/ck");
  fs::copy_file(step4, checkpoint_path(dir_b.path() + "/ck", 4));
  const TrainSummary b = train(small_config(dir_b.path(), overrides), /*resume=*/true);
  EXPECT_EQ(b.start_step, 4);
  EXPECT_EQ(b.end_step, 8);

  const Losses expected = losses_between(a.losses, 5, 8);
  print_losses("uninterrupted", expected);
  print_losses("resumed      ", b.losses);
  EXPECT_EQ(b.losses, expected);  // bit-identical (==), not merely close
  // Training moved the loss between the checkpoint and the end, so equal losses are not a coincidence.
  EXPECT_NE(a.losses[4].second, a.losses[7].second);
}

TEST_F(TrainerTest, ResumeIsBitIdentical) { expect_exact_resume({}); }

TEST_F(TrainerTest, ResumeIsBitIdenticalWithMoe) {
  expect_exact_resume({"moe.n_experts=4", "moe.top_k=2", "moe.n_shared_experts=1"});
}

TEST_F(TrainerTest, ResumeIsBitIdenticalWithGradientAccumulation) {
  expect_exact_resume({"training.global_batch_size=8", "training.micro_batch_size=4"});
}

// global 8 / micro 4 (two micro-batches, gradients accumulated) against global 8 / micro 8 (one).
TEST_F(TrainerTest, GradientAccumulationMatchesOneLargeMicroBatch) {
  // The premise: a step of two micro-batches of 4 reads the same windows in the same order as one
  // micro-batch of 8, because the sampler hands out consecutive positions of one epoch order. (This holds
  // away from an epoch's end: there a sampler of 8 skips a tail of 4..7 windows that one of 4 still
  // reads, so the two runs part at the first epoch boundary. These runs stay far from it.)
  {
    const TokenDataset data = TokenDataset::open(corpus_dir_->path() + "/train_*.bin", 512, "data.train");
    BatchSampler by4(data, 32, 4, 11, 0, 1, true), by8(data, 32, 8, 11, 0, 1, true);
    ASSERT_GT(by8.steps_per_epoch(), 3);
    for (int step = 0; step < 3; ++step) {
      std::vector<int64_t> two_micro = by4.peek_windows();
      by4.next();
      const std::vector<int64_t> second = by4.peek_windows();
      by4.next();
      two_micro.insert(two_micro.end(), second.begin(), second.end());
      EXPECT_EQ(two_micro, by8.peek_windows()) << "step " << step;
      by8.next();
      EXPECT_EQ(by4.cursor(), by8.cursor());
    }
  }

  TempDir dir_accum, dir_single;
  const std::vector<std::string> common = {"training.max_steps=3", "training.global_batch_size=8"};
  std::vector<std::string> accum = common, single = common;
  accum.push_back("training.micro_batch_size=4");
  single.push_back("training.micro_batch_size=8");
  const TrainSummary a = train(small_config(dir_accum.path(), accum));
  const TrainSummary s = train(small_config(dir_single.path(), single));
  print_losses("global 8 / micro 4", a.losses);
  print_losses("global 8 / micro 8", s.losses);
  ASSERT_EQ(steps_of(a.losses), (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(steps_of(s.losses), steps_of(a.losses));
  for (size_t i = 0; i < a.losses.size(); ++i) {
    // f32 sums in a different grouping (two means of 4 rows vs one mean of 8): a few ulps, far below 1e-5.
    const double rel = std::abs(a.losses[i].second - s.losses[i].second) / std::abs(s.losses[i].second);
    std::printf("  step %zu: relative difference %.3g\n", i + 1, rel);
    EXPECT_LT(rel, 1e-5) << "step " << i + 1;
  }
  // Both runs learn: step 3 differs from step 1, so agreement at step 3 checks the accumulated update.
  EXPECT_NE(a.losses[0].second, a.losses[2].second);
}

TEST_F(TrainerTest, CheckpointRotationKeepsTheNewest) {
  TempDir dir;
  const TrainSummary s =
      train(small_config(dir.path(), {"checkpoint.interval=2", "checkpoint.keep=2", "training.max_steps=8"}));
  const std::string ck = dir.path() + "/ck";
  std::vector<int64_t> kept;
  for (const auto& [step, path] : list_checkpoints(ck)) kept.push_back(step);
  EXPECT_EQ(kept, (std::vector<int64_t>{6, 8}));
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(ck)) files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"step_00000006.h5", "step_00000008.h5"}));  // no temp files
  EXPECT_EQ(s.last_checkpoint, checkpoint_path(ck, 8));
}

TEST_F(TrainerTest, ResumeAutoWithEmptyDirectoryStartsFromZero) {
  TempDir dir;
  fs::create_directories(dir.path() + "/ck");
  const TrainSummary s = train(
      small_config(dir.path(), {"checkpoint.resume=auto", "checkpoint.interval=2", "training.max_steps=4"}));
  EXPECT_EQ(s.start_step, 0);
  EXPECT_EQ(s.end_step, 4);
  EXPECT_EQ(steps_of(s.losses), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(s.tokens, 4 * 4 * 32);
  // The same with a directory that does not exist yet, and through TrainOptions.resume.
  TempDir other;
  const TrainSummary t = train(small_config(other.path(), {"training.max_steps=2"}), /*resume=*/true);
  EXPECT_EQ(t.start_step, 0);
  EXPECT_EQ(steps_of(t.losses), (std::vector<int64_t>{1, 2}));
}

// 100 steps (~0.5 s): the loss falls well below its start (ln 512 ≈ 6.24) and below the unigram entropy
// of the corpus, so the model uses context, not only token frequencies.
TEST_F(TrainerTest, LossFalls) {
  TempDir dir;
  const TrainSummary s = train(small_config(
      dir.path(), {"training.max_steps=100", "training.global_batch_size=8", "training.micro_batch_size=8",
                   "logging.interval=10", "training.eval_interval=100", "training.eval_batches=4"}));
  ASSERT_FALSE(s.losses.empty());
  std::printf("  first loss %.4f, last loss %.4f (ratio %.3f), val loss %.4f, unigram entropy %.4f\n",
              s.first_loss, s.last_loss, s.last_loss / s.first_loss, s.val_loss.value_or(-1.0),
              corpus_.unigram_entropy);
  EXPECT_NEAR(s.first_loss, std::log(512.0), 0.1);  // a fresh model predicts nearly uniformly
  EXPECT_LT(s.last_loss, 0.8 * s.first_loss);
  ASSERT_TRUE(s.val_loss.has_value());
  EXPECT_LT(*s.val_loss, corpus_.unigram_entropy);
}

// ---- metrics.jsonl ----

// One line of metrics.jsonl as key -> number. The trainer writes flat objects of numbers; anything else
// (a missing brace, a non-number) fails the test.
std::map<std::string, double> parse_metrics_line(const std::string& line) {
  std::map<std::string, double> out;
  EXPECT_TRUE(line.size() >= 2 && line.front() == '{' && line.back() == '}') << line;
  size_t pos = 1;
  while (pos < line.size() - 1) {
    const size_t key_begin = line.find('"', pos);
    const size_t key_end = line.find('"', key_begin + 1);
    const size_t colon = line.find(':', key_end);
    if (key_begin == std::string::npos || key_end == std::string::npos || colon == std::string::npos) {
      ADD_FAILURE() << "malformed metrics line: " << line;
      break;
    }
    const std::string key = line.substr(key_begin + 1, key_end - key_begin - 1);
    const char* number = line.c_str() + colon + 1;
    char* end = nullptr;
    const double value = std::strtod(number, &end);
    EXPECT_NE(end, number) << "key '" << key << "' has no number in: " << line;
    EXPECT_FALSE(out.count(key)) << "key '" << key << "' twice in: " << line;
    out[key] = value;
    pos = static_cast<size_t>(end - line.c_str());
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == ',')) ++pos;
    if (end == number) break;
  }
  return out;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(TrainerTest, MetricsLogHasOneLinePerLogPointAndEvalLines) {
  TempDir dir;
  // Log points at interval 3 over 8 steps: the first step, every third, the last.
  const TrainSummary s = train(small_config(
      dir.path(), {"logging.interval=3", "training.eval_interval=4", "training.eval_batches=2"}));
  ASSERT_EQ(steps_of(s.losses), (std::vector<int64_t>{1, 3, 6, 8}));

  const std::vector<std::string> keys = {"step",         "loss", "lr",        "grad_norm",
                                         "tokens_per_s", "mfu",  "elapsed_s", "eta_s"};
  Losses logged;
  std::vector<std::pair<int64_t, double>> evals;
  for (const std::string& line : read_lines(dir.path() + "/metrics.jsonl")) {
    std::map<std::string, double> m = parse_metrics_line(line);
    ASSERT_TRUE(m.count("step")) << line;
    const auto step = static_cast<int64_t>(m["step"]);
    if (m.count("val_loss")) {
      EXPECT_EQ(m.size(), 2u) << line;
      EXPECT_TRUE(std::isfinite(m["val_loss"]) && m["val_loss"] > 0) << line;
      evals.emplace_back(step, m["val_loss"]);
      continue;
    }
    EXPECT_EQ(m.size(), keys.size()) << line;
    for (const std::string& key : keys) EXPECT_TRUE(m.count(key)) << "no '" << key << "' in: " << line;
    EXPECT_GT(m["lr"], 0) << line;
    EXPECT_GT(m["grad_norm"], 0) << line;
    EXPECT_GT(m["tokens_per_s"], 0) << line;
    EXPECT_EQ(m["mfu"], 0) << "no peak FLOP/s is known for a CPU: " << line;
    EXPECT_GE(m["elapsed_s"], 0) << line;
    EXPECT_GE(m["eta_s"], 0) << line;
    logged.emplace_back(step, m["loss"]);
  }
  // The logged losses are those the summary holds, exactly (printed with 17 significant digits).
  EXPECT_EQ(logged, s.losses);
  EXPECT_EQ(steps_of(evals), (std::vector<int64_t>{4, 8}));
  ASSERT_TRUE(s.val_loss.has_value());
  ASSERT_FALSE(evals.empty());
  EXPECT_EQ(evals.back().second, *s.val_loss);
  // At the last log point nothing is left to do.
  for (const std::string& line : read_lines(dir.path() + "/metrics.jsonl")) {
    const std::map<std::string, double> m = parse_metrics_line(line);
    if (m.count("eta_s") && m.at("step") == 8) {
      EXPECT_EQ(m.at("eta_s"), 0) << line;
    }
  }
}

TEST_F(TrainerTest, ResumeWithDifferentModelNamesFileAndParameter) {
  TempDir dir;
  train(small_config(dir.path(), {"checkpoint.interval=2", "training.max_steps=2"}));
  const std::string ck = checkpoint_path(dir.path() + "/ck", 2);
  ASSERT_TRUE(fs::exists(ck));
  // d_model 32 -> 48: same parameter names, other shapes.
  expect_input_error(
      [&] { Trainer(small_config(dir.path(), {"model.d_model=48"}), {.resume = true, .quiet = true}); },
      {ck, "/params/embed.weight", "expected shape [512, 48], got [512, 32]"});
  // 2 -> 3 layers: the model has parameters the checkpoint lacks; 2 -> 1: the other way round.
  expect_input_error(
      [&] { Trainer(small_config(dir.path(), {"model.n_layers=3"}), {.resume = true, .quiet = true}); },
      {ck, "/params", "the checkpoint lacks the model's 'blocks.2."});
  expect_input_error(
      [&] { Trainer(small_config(dir.path(), {"model.n_layers=1"}), {.resume = true, .quiet = true}); },
      {ck, "/params", "the model has no 'blocks.1."});
}

}  // namespace
}  // namespace nsa::train
