// The data layer: shard reading and writing with its error messages, glob expansion, the windows, the
// sampler's determinism, rank split and cursor resume, and the tools' generators (synth, JSON, tokenize).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "data/shard.h"
#include "document_reader.h"
#include "shard_sink.h"
#include "synth.h"
#include "test_util.h"
#include "tokenize.h"

namespace nsa {
namespace {

namespace fs = std::filesystem;
using data_tools::json_string_field;

using test::input_error;
using test::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}


std::vector<uint32_t> iota_tokens(int64_t n, uint32_t start, uint32_t modulo) {
  std::vector<uint32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = (start + static_cast<uint32_t>(i)) % modulo;
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Shards

TEST(Shard, RoundTripVersion1And2) {
  TempDir dir;
  for (int version : {1, 2}) {
    const uint32_t modulo = version == 1 ? 65536 : 100000;
    const std::vector<uint32_t> tokens = iota_tokens(70001, 65500, modulo);  // wraps past 65535 for v1
    const std::string path = dir.file(str("v", version, ".bin"));
    write_shard(path, tokens, version);
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(path)), 1024 + 70001 * (version == 1 ? 2 : 4));

    const Shard shard = Shard::open(path);
    EXPECT_EQ(shard.version(), version);
    EXPECT_EQ(shard.size(), 70001);
    EXPECT_EQ(shard.path(), path);
    for (int64_t i : {0, 1, 35, 36, 70000}) EXPECT_EQ(shard.token(i), tokens[i]) << "index " << i;
    std::vector<int32_t> window(100);
    shard.read(30, window);
    for (int64_t i = 0; i < 100; ++i) ASSERT_EQ(window[i], static_cast<int32_t>(tokens[30 + i]));
    const auto [lo, hi] = shard.min_max();
    EXPECT_EQ(lo, 0u);
    EXPECT_EQ(hi, version == 1 ? 65535u : 99999u);
    // The first token >= 65530 is at index 30 (65500 + 30).
    EXPECT_EQ(shard.find_token_at_least(65530).value_or(-1), 30);
    EXPECT_FALSE(shard.find_token_at_least(200000).has_value());
    EXPECT_THROW(shard.token(70001), Error);
  }
}

TEST(Shard, EmptyTokenListIsAValidShard) {
  TempDir dir;
  write_shard(dir.file("e.bin"), {}, 1);
  const Shard shard = Shard::open(dir.file("e.bin"));
  EXPECT_EQ(shard.size(), 0);
  EXPECT_EQ(shard.min_max(), (std::pair<uint32_t, uint32_t>{0, 0}));
}

TEST(Shard, MoveKeepsTheMapping) {
  TempDir dir;
  write_shard(dir.file("m.bin"), iota_tokens(10, 5, 100), 1);
  Shard a = Shard::open(dir.file("m.bin"));
  Shard b = std::move(a);
  EXPECT_EQ(b.token(3), 8u);
  EXPECT_EQ(a.size(), 0);  // NOLINT(bugprone-use-after-move): the moved-from shard is empty
  Shard c = Shard::open(dir.file("m.bin"));
  c = std::move(b);
  EXPECT_EQ(c.token(9), 14u);
}

TEST(Shard, WriterRejectsWideTokensInVersion1AndBadVersions) {
  TempDir dir;
  const std::string path = dir.file("w.bin");
  const std::vector<uint32_t> tokens{1, 2, 70000};
  EXPECT_EQ(
      input_error([&] { write_shard(path, tokens, 1); }),
      path + ": token 70000 at position 2 does not fit a version-1 shard (uint16 tokens); write version 2");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(input_error([&] { write_shard(path, tokens, 3); }),
            path + ": shard version must be 1 (uint16) or 2 (uint32), got 3");
  write_shard(path, tokens, 2);
  EXPECT_EQ(Shard::open(path).token(2), 70000u);
  // No temporary file is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Shard, OpenErrorsAreOneLineAndNameTheFile) {
  TempDir dir;
  const std::string good = dir.file("good.bin");
  write_shard(good, iota_tokens(1000, 0, 500), 1);
  const std::string bytes = read_bytes(good);

  const std::string truncated = dir.file("truncated.bin");
  write_bytes(truncated, bytes.substr(0, 1024 + 1500));
  EXPECT_EQ(
      input_error([&] { Shard::open(truncated); }),
      truncated + ": truncated shard: header says 1000 tokens (2000 bytes), file has 1500 bytes of tokens");

  const std::string trailing = dir.file("trailing.bin");
  write_bytes(trailing, bytes + "xy");
  EXPECT_EQ(
      input_error([&] { Shard::open(trailing); }),
      trailing +
          ": trailing bytes in shard: header says 1000 tokens (2000 bytes), file has 2002 bytes of tokens");

  std::string bad_magic_bytes = bytes;
  bad_magic_bytes[0] = 0x11;
  const std::string bad_magic = dir.file("magic.bin");
  write_bytes(bad_magic, bad_magic_bytes);
  const int32_t magic = (kShardMagic & ~0xff) | 0x11;
  EXPECT_EQ(input_error([&] { Shard::open(bad_magic); }),
            str(bad_magic, ": not a shard: magic number ", magic, ", expected 20240520 (llm.c format)"));

  std::string bad_version_bytes = bytes;
  bad_version_bytes[4] = 7;
  const std::string bad_version = dir.file("version.bin");
  write_bytes(bad_version, bad_version_bytes);
  EXPECT_EQ(input_error([&] { Shard::open(bad_version); }),
            bad_version + ": unsupported shard version 7 (1: uint16 tokens, 2: uint32 tokens)");

  const std::string empty = dir.file("empty.bin");
  write_bytes(empty, "");
  EXPECT_EQ(input_error([&] { Shard::open(empty); }),
            empty + ": empty file, expected a shard (a 1024-byte header and tokens)");

  const std::string short_header = dir.file("short.bin");
  write_bytes(short_header, bytes.substr(0, 100));
  EXPECT_EQ(input_error([&] { Shard::open(short_header); }),
            short_header + ": not a shard: file has 100 bytes, smaller than the 1024-byte header");

  const std::string missing = dir.file("missing.bin");
  EXPECT_EQ(input_error([&] { Shard::open(missing); }),
            missing + ": cannot open shard: No such file or directory");

  EXPECT_EQ(input_error([&] { Shard::open(dir.path()); }), dir.path() + ": not a regular file");

  // Every message is one line.
  for (const std::string& path : {truncated, trailing, bad_magic, bad_version, empty, missing}) {
    EXPECT_EQ(input_error([&] { Shard::open(path); }).find('\n'), std::string::npos);
  }
}

TEST(Shard, VocabCheckReportsTheFirstTokenOutside) {
  TempDir dir;
  std::vector<uint32_t> tokens = iota_tokens(300, 0, 100);
  tokens[123] = 512;
  tokens[200] = 999;
  const std::string path = dir.file("v.bin");
  write_shard(path, tokens, 1);
  const Shard shard = Shard::open(path);
  EXPECT_EQ(input_error([&] { shard.check_vocab(512); }),
            path + ": token 512 at position 123 is outside the vocabulary (vocab_size 512)");
  EXPECT_EQ(input_error([&] { shard.check_vocab(1000); }), "");
}

// ---------------------------------------------------------------------------------------------------------
// Dataset and windows

// Shard s holds tokens 1000·s + i: a window's tokens say where they came from.
std::vector<std::string> write_tagged_shards(const TempDir& dir, const std::vector<int64_t>& sizes,
                                             const std::string& prefix = "train") {
  std::vector<std::string> paths;
  for (size_t s = 0; s < sizes.size(); ++s) {
    paths.push_back(dir.file(str(prefix, "_", s, ".bin")));
    write_shard(paths.back(), iota_tokens(sizes[s], static_cast<uint32_t>(1000 * s), 1u << 30), 2);
  }
  return paths;
}

TEST(Dataset, GlobIsSortedAndNoMatchIsAnError) {
  TempDir dir;
  // Written out of order; the glob must give byte order.
  for (const char* name : {"b_2.bin", "b_0.bin", "b_1.bin", "other.bin"}) {
    write_shard(dir.file(name), iota_tokens(10, 0, 10), 1);
  }
  const TokenDataset data = TokenDataset::open(dir.file("b_*.bin"), 10, "data.train");
  ASSERT_EQ(data.shards().size(), 3u);
  EXPECT_EQ(data.shards()[0].path(), dir.file("b_0.bin"));
  EXPECT_EQ(data.shards()[2].path(), dir.file("b_2.bin"));
  EXPECT_EQ(data.total_tokens(), 30);
  EXPECT_EQ(data.name(), "data.train");

  const std::string pattern = dir.file("train_*.bin");
  EXPECT_EQ(input_error([&] { TokenDataset::open(pattern, 10, "data.train"); }),
            "data.train: no files match '" + pattern + "'");
}

TEST(Dataset, ShardErrorsNameTheDataset) {
  TempDir dir;
  write_shard(dir.file("t_0.bin"), iota_tokens(10, 0, 10), 1);
  write_shard(dir.file("t_1.bin"), iota_tokens(10, 5, 100), 1);  // token 10 at position 5
  EXPECT_EQ(input_error([&] { TokenDataset::open(dir.file("t_*.bin"), 10, "data.val"); }),
            "data.val: " + dir.file("t_1.bin") +
                ": token 10 at position 5 is outside the vocabulary (vocab_size 10)");
  write_bytes(dir.file("t_2.bin"), "junk");
  EXPECT_NE(input_error([&] {
              TokenDataset::open(dir.file("t_*.bin"), 0, "data.val");
            }).find("data.val: " + dir.file("t_2.bin") + ": not a shard"),
            std::string::npos);
}

TEST(Dataset, WindowsStayInsideShardsAndDropTails) {
  TempDir dir;
  // seq_len 4 → windows of 5 tokens: shard sizes 12, 3, 0, 25 give 2, 0, 0, 5 windows.
  const TokenDataset data = TokenDataset::from_paths(write_tagged_shards(dir, {12, 3, 0, 25}), 0);
  const Windows windows = data.windows(4);
  ASSERT_EQ(windows.size(), 7);
  const std::vector<std::pair<int64_t, int64_t>> where{{0, 0},  {0, 5},  {3, 0}, {3, 5},
                                                       {3, 10}, {3, 15}, {3, 20}};
  std::vector<int32_t> w(5);
  for (int64_t i = 0; i < 7; ++i) {
    EXPECT_EQ(windows.locate(i), where[i]) << "window " << i;
    windows.read(i, w);
    for (int64_t k = 0; k < 5; ++k) {
      ASSERT_EQ(w[k], 1000 * where[i].first + where[i].second + k) << "window " << i << " token " << k;
    }
  }
  EXPECT_THROW(windows.locate(7), Error);
}

// ---------------------------------------------------------------------------------------------------------
// Sampler

// Row j of a batch as the window index it came from (tagged shards: token = 1000·shard + offset).
int64_t window_of_row(const Windows& windows, const Batch& b, int64_t row) {
  const int32_t first = b.inputs[row * b.seq_len];
  for (int64_t i = 0; i < windows.size(); ++i) {
    const auto [shard, offset] = windows.locate(i);
    if (1000 * shard + offset == first) return i;
  }
  return -1;
}

TEST(Sampler, BatchesAreShiftedWindows) {
  TempDir dir;
  const TokenDataset data = TokenDataset::from_paths(write_tagged_shards(dir, {100, 64}), 0);
  BatchSampler sampler(data, 7, 3, 42, 0, 1, true);
  const Windows windows = data.windows(7);
  for (int step = 0; step < 5; ++step) {
    const std::vector<int64_t> expected = sampler.peek_windows();
    const Batch b = sampler.next();
    ASSERT_EQ(b.batch, 3);
    ASSERT_EQ(b.seq_len, 7);
    ASSERT_EQ(b.inputs.size(), 21u);
    std::vector<int32_t> w(8);
    for (int64_t r = 0; r < 3; ++r) {
      windows.read(expected[r], w);
      for (int64_t t = 0; t < 7; ++t) {
        ASSERT_EQ(b.inputs[r * 7 + t], w[t]);
        ASSERT_EQ(b.targets[r * 7 + t], w[t + 1]);
      }
    }
  }
}

TEST(Sampler, SameSeedSameBatchesAndEachEpochIsAPermutation) {
  TempDir dir;
  const TokenDataset data = TokenDataset::from_paths(write_tagged_shards(dir, {401, 333, 90}), 0);
  const Windows windows = data.windows(8);  // 44 + 37 + 10 = 91 windows
  ASSERT_EQ(windows.size(), 91);
  BatchSampler a(data, 8, 4, 7, 0, 1, true), b(data, 8, 4, 7, 0, 1, true), other(data, 8, 4, 8, 0, 1, true);
  EXPECT_EQ(a.steps_per_epoch(), 22);
  std::set<int64_t> seen;
  bool differs_from_other_seed = false;
  std::vector<int64_t> epoch0_first, epoch1_first;
  for (int step = 0; step < 44; ++step) {
    const Batch x = a.next(), y = b.next(), z = other.next();
    ASSERT_EQ(x.inputs, y.inputs) << "step " << step;
    ASSERT_EQ(x.targets, y.targets) << "step " << step;
    differs_from_other_seed |= x.inputs != z.inputs;
    for (int64_t r = 0; r < 4; ++r) {
      const int64_t w = window_of_row(windows, x, r);
      if (step < 22) {
        EXPECT_TRUE(seen.insert(w).second) << "window " << w << " twice in epoch 0";
      }
      if (step == 0) epoch0_first.push_back(w);
      if (step == 22) epoch1_first.push_back(w);
    }
  }
  EXPECT_EQ(seen.size(), 88u);  // 22 steps × 4: the 3 windows left over are skipped
  EXPECT_TRUE(differs_from_other_seed);
  EXPECT_NE(epoch0_first, epoch1_first);  // a new permutation in epoch 1
  EXPECT_EQ(a.cursor(), (DataCursor{1, 88}));
}

TEST(Sampler, PermutationIsPinned) {
  // The shuffle must never change silently: a checkpoint's cursor refers to it.
  const std::vector<uint32_t> p = epoch_permutation(10, 1234, 0);
  std::vector<uint32_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_EQ(p, epoch_permutation(10, 1234, 0));
  EXPECT_NE(p, epoch_permutation(10, 1234, 1));
  EXPECT_NE(p, epoch_permutation(10, 1235, 0));
  EXPECT_EQ(p, (std::vector<uint32_t>{5, 7, 2, 9, 6, 8, 4, 3, 1, 0}));
}

TEST(Sampler, RanksSplitAStepDisjointlyAndTogetherMatchOneRank) {
  TempDir dir;
  const TokenDataset data = TokenDataset::from_paths(write_tagged_shards(dir, {500, 313}), 0);
  const int64_t micro = 3;
  BatchSampler rank0(data, 10, micro, 5, 0, 2, true), rank1(data, 10, micro, 5, 1, 2, true);
  BatchSampler single(data, 10, 2 * micro, 5, 0, 1, true);
  const Windows windows = data.windows(10);
  for (int step = 0; step < 30; ++step) {  // 73 windows, 12 steps per epoch: crosses two epoch ends
    const Batch a = rank0.next(), b = rank1.next(), both = single.next();
    std::set<int64_t> wa, wb;
    for (int64_t r = 0; r < micro; ++r) {
      wa.insert(window_of_row(windows, a, r));
      wb.insert(window_of_row(windows, b, r));
    }
    for (int64_t w : wa)
      EXPECT_EQ(wb.count(w), 0u) << "step " << step << ": window " << w << " on both ranks";
    std::vector<int32_t> joined = a.inputs;
    joined.insert(joined.end(), b.inputs.begin(), b.inputs.end());
    ASSERT_EQ(joined, both.inputs) << "step " << step;
    EXPECT_EQ(rank0.cursor(), single.cursor());
    EXPECT_EQ(rank1.cursor(), single.cursor());
  }
}

TEST(Sampler, ResumeFromCursorGivesTheSameBatches) {
  TempDir dir;
  const TokenDataset data = TokenDataset::from_paths(write_tagged_shards(dir, {300, 200}), 0);
  // seq_len 15: 18 + 12 = 30 windows; micro 4 × world 2 = 8 per step: 3 steps per epoch.
  for (int stop : {0, 1, 2, 3, 5}) {  // 3: exactly at an epoch end
    for (int rank : {0, 1}) {
      BatchSampler uninterrupted(data, 15, 4, 99, rank, 2, true);
      for (int s = 0; s < stop; ++s) uninterrupted.next();
      const DataCursor saved = uninterrupted.cursor();
      BatchSampler resumed(data, 15, 4, 99, rank, 2, true);
      resumed.set_cursor(saved);
      for (int s = 0; s < 7; ++s) {  // crosses at least two epoch boundaries
        const Batch x = uninterrupted.next(), y = resumed.next();
        ASSERT_EQ(x.inputs, y.inputs) << "stop " << stop << " rank " << rank << " step " << s;
        ASSERT_EQ(x.targets, y.targets);
        ASSERT_EQ(uninterrupted.cursor(), resumed.cursor());
      }
    }
  }
  BatchSampler sampler(data, 15, 4, 99, 0, 2, true);
  EXPECT_EQ(
      input_error([&] {
        sampler.set_cursor({0, 31});
      }),
      "data cursor (epoch 0, position 31) is past the end of an epoch of 30 windows: the checkpoint was "
      "written for another dataset or seq_len");
}

TEST(Sampler, UnshuffledReadsInOrderAndResetRestarts) {
  TempDir dir;
  const TokenDataset data = TokenDataset::from_paths(write_tagged_shards(dir, {50, 50}), 0);
  BatchSampler sampler(data, 9, 2, 1, 0, 1, false);  // 5 + 5 windows
  const Windows windows = data.windows(9);
  const Batch first = sampler.next();
  EXPECT_EQ(window_of_row(windows, first, 0), 0);
  EXPECT_EQ(window_of_row(windows, first, 1), 1);
  for (int64_t expected = 2; expected < 10; expected += 2) {
    const Batch b = sampler.next();
    EXPECT_EQ(window_of_row(windows, b, 0), expected);
    EXPECT_EQ(window_of_row(windows, b, 1), expected + 1);
  }
  EXPECT_EQ(window_of_row(windows, sampler.next(), 0), 0);  // epoch 1 starts over
  sampler.reset();
  EXPECT_EQ(sampler.cursor(), DataCursor{});
  EXPECT_EQ(sampler.next().inputs, first.inputs);
}

TEST(Sampler, TooFewWindowsIsAClearError) {
  TempDir dir;
  const std::string pattern = dir.file("s_*.bin");
  write_tagged_shards(dir, {100, 40}, "s");
  const TokenDataset data = TokenDataset::open(pattern, 0, "data.val");
  // seq_len 32: 3 + 1 windows; micro 2 × world 4 = 8.
  EXPECT_EQ(
      input_error([&] { BatchSampler(data, 32, 2, 0, 1, 4, false); }),
      "data.val: 140 tokens in 2 shard(s) give 4 window(s) of 33 tokens (seq_len 32 + 1), fewer than one "
      "step needs: 8 (micro_batch 2 x world 4)");
  EXPECT_THROW(BatchSampler(data, 32, 2, 0, 4, 4, false), Error);  // rank outside the world
}

// ---------------------------------------------------------------------------------------------------------
// nsa-data synth

using data_tools::SynthDocument;
using data_tools::SynthLanguage;
using data_tools::SynthOptions;
namespace tok = data_tools::tok;

SynthOptions small_synth(uint64_t seed) {
  SynthOptions o;
  o.train_tokens = 60'000;
  o.val_tokens = 7'000;
  o.shard_tokens = 25'000;
  o.seed = seed;
  o.retrieval_max_tokens = 1024;
  return o;
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir a, b, c;
  const auto sa = data_tools::run_synth(small_synth(1), a.path());
  data_tools::run_synth(small_synth(1), b.path());
  data_tools::run_synth(small_synth(2), c.path());
  EXPECT_EQ(sa.train.shards, 3);
  EXPECT_EQ(sa.val.shards, 1);
  EXPECT_EQ(sa.train.tokens, 60'000);
  for (const char* name : {"train_000.bin", "train_001.bin", "train_002.bin", "val_000.bin"}) {
    ASSERT_TRUE(fs::exists(a.file(name))) << name;
    EXPECT_EQ(read_bytes(a.file(name)), read_bytes(b.file(name))) << name;
    EXPECT_NE(read_bytes(a.file(name)), read_bytes(c.file(name))) << name;
  }
  const TokenDataset train = TokenDataset::open(a.file("train_*.bin"), 512, "synth");  // also checks vocab
  EXPECT_EQ(train.total_tokens(), 60'000);
  EXPECT_EQ(train.shards()[2].size(), 10'000);
  EXPECT_EQ(train.shards()[0].token(0), tok::kEot);
  // The language has structure a model can learn: the previous token says much about the next.
  std::printf("synth: unigram entropy %.3f nats, bigram %.3f nats\n", sa.unigram_entropy, sa.bigram_entropy);
  EXPECT_GT(sa.unigram_entropy, 4.0);
  EXPECT_LT(sa.bigram_entropy, sa.unigram_entropy - 1.5);
  EXPECT_GT(sa.train.documents[1] + sa.train.documents[2], 0);
}

TEST(Synth, SplitsDifferAndRemovedStaleShards) {
  TempDir dir;
  SynthOptions o = small_synth(3);
  const SynthLanguage language(o.vocab_size, o.seed);
  EXPECT_NE(data_tools::synth_split(language, o, "train", 5000),
            data_tools::synth_split(language, o, "val", 5000));
  // A first run with more shards; the second must leave only its own.
  o.shard_tokens = 10'000;
  data_tools::run_synth(o, dir.path());
  EXPECT_TRUE(fs::exists(dir.file("train_005.bin")));
  o.shard_tokens = 30'000;
  data_tools::run_synth(o, dir.path());
  EXPECT_FALSE(fs::exists(dir.file("train_002.bin")));
  EXPECT_EQ(TokenDataset::open(dir.file("train_*.bin"), 512).total_tokens(), 60'000);
}

TEST(Synth, RetrievalDocumentsHoldTheirAnswers) {
  const SynthOptions o = small_synth(4);
  const SynthLanguage language(o.vocab_size, o.seed);
  data_tools::Rng rng(11, 0);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t length = 300 + 100 * trial;
    const SynthDocument p = language.passkey_document(rng, length, o.passkey_digits);
    ASSERT_EQ(p.answers.size(), 1u);
    const auto& t = p.tokens;
    const int64_t k = o.passkey_digits;
    EXPECT_NEAR(static_cast<double>(t.size()), static_cast<double>(length), 60.0);
    ASSERT_EQ(p.answers[0].begin, static_cast<int64_t>(t.size()) - k);
    EXPECT_EQ(t[t.size() - k - 2], tok::kQuery);
    EXPECT_EQ(t[t.size() - k - 1], tok::kPasskey);
    // Exactly one earlier PASSKEY, followed by the same digits.
    const auto first = std::find(t.begin(), t.end(), tok::kPasskey);
    ASSERT_LT(first + k, t.end() - k - 2);
    EXPECT_EQ(std::count(t.begin(), t.end(), tok::kPasskey), 2);
    EXPECT_TRUE(std::equal(first + 1, first + 1 + k, t.end() - k));
    for (int64_t i = 0; i < k; ++i) EXPECT_LT(t[t.size() - 1 - i] - tok::kDigit0, 10u);

    const SynthDocument r = language.recall_document(rng, length, o);
    ASSERT_FALSE(r.answers.empty());
    const auto& u = r.tokens;
    const int64_t kt = o.recall_key_tokens, vt = o.recall_value_tokens;
    for (const data_tools::AnswerSpan& a : r.answers) {
      ASSERT_EQ(a.length, vt);
      // ... QUERY key VALUE [answer]; the record KEY key VALUE value earlier has the same value.
      ASSERT_EQ(u[a.begin - 1], tok::kValue);
      ASSERT_EQ(u[a.begin - 2 - kt], tok::kQuery);
      const std::vector<uint32_t> key(u.begin() + a.begin - 1 - kt, u.begin() + a.begin - 1);
      int matches = 0;
      for (size_t i = 0; i + 2 + kt + vt <= u.size(); ++i) {
        if (u[i] == tok::kKey && std::equal(key.begin(), key.end(), u.begin() + i + 1) &&
            u[i + 1 + kt] == tok::kValue) {
          ++matches;
          EXPECT_TRUE(std::equal(u.begin() + i + 2 + kt, u.begin() + i + 2 + kt + vt, u.begin() + a.begin));
        }
      }
      EXPECT_EQ(matches, 1);
    }
  }
}

TEST(Synth, OptionErrorsNameTheOption) {
  SynthOptions o;
  o.vocab_size = 100;
  EXPECT_EQ(input_error([&] { o.validate(); }), "--vocab: expected a size in [128, 65536], got 100");
  o = SynthOptions{};
  o.passkey_fraction = 0.7;
  o.recall_fraction = 0.5;
  EXPECT_EQ(input_error([&] { o.validate(); }),
            "--recall-fraction: expected passkey and recall fractions summing to at most 1, got 1.2");
  o = SynthOptions{};
  EXPECT_EQ(input_error([&] { o.validate(); }), "");
}

TEST(ShardSink, SplitsTheStreamIntoShards) {
  TempDir dir;
  data_tools::ShardSink sink(dir.path(), "x", 4, 1);
  const std::vector<uint32_t> a{1, 2, 3}, b{4, 5, 6, 7, 8, 9, 10};
  sink.append(a);
  sink.append(b);
  sink.push(11);
  const std::vector<std::string> paths = sink.finish();
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[2], dir.file("x_002.bin"));
  EXPECT_EQ(Shard::open(paths[1]).token(0), 5u);
  EXPECT_EQ(Shard::open(paths[2]).size(), 3);
}

// ---------------------------------------------------------------------------------------------------------
// JSON string field

TEST(Json, DecodesEscapesAndSurrogatePairs) {
  EXPECT_EQ(json_string_field(R"({"text": "hello"})", "text", "f:1"), "hello");
  EXPECT_EQ(json_string_field(R"({"text":"a\"b\\c\/d\be\ff\ng\rh\ti"})", "text", "f:1"),
            "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(json_string_field(R"({"text":"\u00e9\u4e2D\u0041"})", "text", "f:1"),
            "\xc3\xa9\xe4\xb8\xad"
            "A");
  EXPECT_EQ(json_string_field(R"({"text":"\ud83d\ude00!"})", "text", "f:1"), "\xf0\x9f\x98\x80!");
  EXPECT_EQ(json_string_field(R"({"text":"\u0000"})", "text", "f:1"), std::string(1, '\0'));
  EXPECT_EQ(json_string_field("{\"text\":\"caf\xc3\xa9\"}", "text", "f:1"), "caf\xc3\xa9");  // raw UTF-8
  // Bytes that are not UTF-8 pass as they are (tokenized as bytes, like a text file's).
  EXPECT_EQ(json_string_field("{\"text\":\"a\xff\xc0\"}", "text", "f:1"), "a\xff\xc0");
  // Other fields of every kind are skipped; the first of repeated keys wins; whitespace anywhere.
  EXPECT_EQ(json_string_field(R"( { "id": -12.5e+3, "meta": {"a": [1, {"text": "no"}, null, true, false]},
                                    "tags": [], "text" : "yes", "text": "second" } )",
                              "text", "f:1"),
            "yes");
  EXPECT_EQ(json_string_field(R"({"body": "x", "text": ""})", "text", "f:1"), "");
  EXPECT_EQ(json_string_field(R"({"content": "c"})", "content", "f:1"), "c");
}

TEST(Json, RejectsMalformedLinesWithFileLineAndColumn) {
  auto error = [](const std::string& line, const std::string& field = "text") {
    return input_error([&] { json_string_field(line, field, "data.jsonl:7"); });
  };
  EXPECT_EQ(error(R"({"text" "x"})"), "data.jsonl:7: malformed JSON at column 9: expected ':' after the key");
  EXPECT_EQ(error(R"({"text": "x",})"), "data.jsonl:7: malformed JSON at column 14: expected a string key");
  EXPECT_EQ(error(R"({"text": "x)"), "data.jsonl:7: malformed JSON at column 12: unterminated string");
  EXPECT_EQ(error(R"({"text": "x"} extra)"),
            "data.jsonl:7: malformed JSON at column 15: unexpected text after the value");
  EXPECT_EQ(error(R"(["text"])"), "data.jsonl:7: malformed JSON at column 1: expected an object, found '['");
  EXPECT_EQ(error(""), "data.jsonl:7: malformed JSON at column 1: expected an object, found the end");
  EXPECT_EQ(error(R"({"text": "\q"})"), "data.jsonl:7: malformed JSON at column 11: invalid escape '\\q'");
  EXPECT_EQ(error(R"({"text": "\u12"})"),
            "data.jsonl:7: malformed JSON at column 11: expected four hex digits after \\u");
  EXPECT_EQ(error(R"({"text": "\ud83d"})"),
            "data.jsonl:7: malformed JSON at column 11: high surrogate escape not followed by a low "
            "surrogate escape");
  EXPECT_EQ(error(R"({"text": "\ud83d\u0041"})"),
            "data.jsonl:7: malformed JSON at column 17: high surrogate escape not followed by a low "
            "surrogate escape");
  EXPECT_EQ(error(R"({"text": "\ude00"})"),
            "data.jsonl:7: malformed JSON at column 11: unpaired low surrogate escape");
  EXPECT_EQ(error("{\"text\": \"a\tb\"}"),
            "data.jsonl:7: malformed JSON at column 12: control character in a string (must be escaped)");
  EXPECT_EQ(error(R"({"n": 01, "text": "x"})"),
            "data.jsonl:7: malformed JSON at column 8: leading zero in a number");
  EXPECT_EQ(error(R"({"n": tru, "text": "x"})"),
            "data.jsonl:7: malformed JSON at column 7: expected a value, found 'tru'");
  EXPECT_EQ(error(R"({"n": [1 2], "text": "x"})"),
            "data.jsonl:7: malformed JSON at column 10: expected ',' or ']' in an array");
  EXPECT_EQ(error(R"({"body": "x"})"), "data.jsonl:7: no field 'text' in the object");
  EXPECT_EQ(error(R"({"text": 42})"), "data.jsonl:7: field 'text' is a number, expected a string");
  EXPECT_EQ(error(R"({"text": ["a"]})"), "data.jsonl:7: field 'text' is an array, expected a string");
  EXPECT_EQ(error(std::string(300, '[')),
            "data.jsonl:7: malformed JSON at column 1: expected an object, found '['");
  EXPECT_NE(error("{\"a\":" + std::string(300, '[')).find("nested deeper than 256 levels"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------
// nsa-data tokenize

std::vector<uint32_t> all_tokens(const std::string& pattern) {
  const TokenDataset data = TokenDataset::open(pattern, data_tools::kByteVocab);
  std::vector<uint32_t> t;
  for (const Shard& s : data.shards()) {
    for (int64_t i = 0; i < s.size(); ++i) t.push_back(s.token(i));
  }
  return t;
}

std::vector<uint32_t> byte_doc(const std::string& text) {
  std::vector<uint32_t> t{data_tools::kByteEot};
  for (unsigned char c : text) t.push_back(c);
  return t;
}

TEST(Tokenize, JsonlAndTextDocumentsToByteShards) {
  TempDir in, out;
  write_bytes(in.file("a.jsonl"),
              "{\"text\": \"h\\u00e9\"}\n\n{\"id\": 2, \"text\": \"ok\"}\r\n{\"text\": \"\"}\n");
  write_bytes(in.file("b.txt"), "plain\nfile");
  data_tools::TokenizeOptions o;
  o.out_dir = out.path();
  o.inputs = {in.file("a.jsonl"), in.file("b.txt")};
  o.val_fraction = 0;
  o.shard_tokens = 5;
  o.progress = false;
  const data_tools::TokenizeSummary s = data_tools::run_tokenize(o);
  EXPECT_EQ(s.train_documents, 3);
  EXPECT_EQ(s.empty_documents, 1);
  EXPECT_EQ(s.val_tokens, 0);
  EXPECT_EQ(s.train_shards, 4);  // 4 + 3 + 11 = 18 tokens in shards of 5
  std::vector<uint32_t> expected = byte_doc("h\xc3\xa9");
  for (const char* doc : {"ok", "plain\nfile"}) {
    const std::vector<uint32_t> d = byte_doc(doc);
    expected.insert(expected.end(), d.begin(), d.end());
  }
  EXPECT_EQ(all_tokens(out.file("train_*.bin")), expected);
  EXPECT_FALSE(fs::exists(out.file("val_000.bin")));
}

TEST(Tokenize, ValSplitKeepsItsShareAndSplitsASingleText) {
  TempDir in, out, out2;
  std::string jsonl;
  for (int i = 0; i < 200; ++i) jsonl += str("{\"text\": \"document number ", i, "\"}\n");
  write_bytes(in.file("d.jsonl"), jsonl);
  data_tools::TokenizeOptions o;
  o.out_dir = out.path();
  o.inputs = {in.file("d.jsonl")};
  o.val_fraction = 0.05;
  o.progress = false;
  const data_tools::TokenizeSummary s = data_tools::run_tokenize(o);
  const double share = static_cast<double>(s.val_tokens) / static_cast<double>(s.val_tokens + s.train_tokens);
  std::printf("tokenize: val share %.4f (asked 0.05), %lld val documents\n", share,
              static_cast<long long>(s.val_documents));
  EXPECT_EQ(s.train_documents + s.val_documents, 200);
  EXPECT_LE(share, 0.05);
  EXPECT_GT(share, 0.04);

  std::string text;
  for (int i = 0; i < 100; ++i) text += str("line ", i, "\n");
  write_bytes(in.file("book.txt"), text);
  o.out_dir = out2.path();
  o.inputs = {in.file("book.txt")};
  o.val_fraction = 0.1;
  const data_tools::TokenizeSummary t = data_tools::run_tokenize(o);
  EXPECT_TRUE(t.split_single_document);
  const std::vector<uint32_t> train = all_tokens(out2.file("train_*.bin"));
  const std::vector<uint32_t> val = all_tokens(out2.file("val_*.bin"));
  const size_t cut = text.find('\n', static_cast<size_t>(text.size() * 0.9)) + 1;
  EXPECT_EQ(train, byte_doc(text.substr(0, cut)));
  EXPECT_EQ(val, byte_doc(text.substr(cut)));
}

TEST(Tokenize, ErrorsNameTheFileAndLine) {
  TempDir in, out;
  write_bytes(in.file("bad.jsonl"), "{\"text\": \"a\"}\n{\"text\": \"b\"\n");
  data_tools::TokenizeOptions o;
  o.out_dir = out.path();
  o.inputs = {in.file("bad.jsonl")};
  o.progress = false;
  EXPECT_EQ(input_error([&] { data_tools::run_tokenize(o); }),
            in.file("bad.jsonl") + ":2: malformed JSON at column 13: expected ',' or '}' in an object");
  o.inputs = {in.file("none.txt")};
  EXPECT_EQ(input_error([&] { data_tools::run_tokenize(o); }),
            in.file("none.txt") + ": cannot open: No such file or directory");
  o.inputs = {in.file("bad.jsonl")};
  o.val_fraction = 1.5;
  EXPECT_EQ(input_error([&] { data_tools::run_tokenize(o); }),
            "--val-fraction: expected a fraction in [0, 1), got 1.5");
}

// ---------------------------------------------------------------------------------------------------------
// Command-line options

TEST(Args, ParsesOptionsAndReportsMistakes) {
  using data_tools::Args;
  const std::vector<data_tools::OptionSpec> spec{{"out"}, {"train-tokens"}, {"quiet", false}};
  const Args a("synth", {"--out", "d", "--train-tokens=4M", "--quiet", "x.txt"}, spec);
  EXPECT_EQ(a.text("out", ""), "d");
  EXPECT_EQ(a.count("train-tokens", 0), 4'000'000);
  EXPECT_TRUE(a.has("quiet"));
  EXPECT_EQ(a.positional(), std::vector<std::string>{"x.txt"});
  EXPECT_EQ(
      input_error([&] {
        Args("synth", {"--train-tokenz", "5"}, spec);
      }),
      "synth: unknown option '--train-tokenz' (did you mean '--train-tokens'?); see nsa-data synth --help");
  EXPECT_EQ(input_error([&] { Args("synth", {"--out"}, spec); }), "synth: option '--out' needs a value");
  const Args bad("c", {"--train-tokens", "12x"}, spec);
  EXPECT_EQ(input_error([&] { bad.count("train-tokens", 0); }),
            "--train-tokens: expected a non-negative integer (like 4000000 or 4M), got '12x'");
}

}  // namespace
}  // namespace nsa
