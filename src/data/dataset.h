// TokenDataset: the shards a glob names, opened and validated, cut into training windows.
//
// A window is seq_len + 1 consecutive tokens of one shard (inputs are its first seq_len tokens, targets
// its last seq_len). Each shard is cut into non-overlapping windows from its start; windows never cross a
// shard boundary and a shard's tail shorter than a window is not used. The dataset's windows are the
// shards' windows concatenated in shard order (shards sorted by path), so window i names the same tokens
// on every rank and in every run.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/shard.h"

namespace nsa {

class Windows;

class TokenDataset {
 public:
  // Expands `glob_pattern` (POSIX glob, sorted), opens every shard and, when vocab_size > 0, checks that
  // every token is < vocab_size (one scan). `name` says which dataset it is in messages ("data.train").
  // Throws InputError ("data.train: no files match 'data/tiny/train_*.bin'", or a shard's error).
  static TokenDataset open(const std::string& glob_pattern, int64_t vocab_size,
                           const std::string& name = "data");
  // The same from a list of paths, in the given order.
  static TokenDataset from_paths(const std::vector<std::string>& paths, int64_t vocab_size,
                                 const std::string& name = "data");

  const std::string& name() const { return name_; }
  const std::string& pattern() const { return pattern_; }
  const std::vector<Shard>& shards() const { return shards_; }
  int64_t total_tokens() const { return total_tokens_; }
  int64_t vocab_size() const { return vocab_size_; }

  // The windows of seq_len + 1 tokens. The view refers to this dataset, which must outlive it
  // and stay in place.
  Windows windows(int64_t seq_len) const;

 private:
  std::string name_;
  std::string pattern_;
  std::vector<Shard> shards_;
  int64_t total_tokens_ = 0;
  int64_t vocab_size_ = 0;
};

// The windows of one length over a dataset: window i lives in the shard whose range of window numbers
// holds i (found by binary search over the shards' first window numbers).
class Windows {
 public:
  Windows(const TokenDataset& dataset, int64_t seq_len);

  int64_t seq_len() const { return seq_len_; }
  int64_t window_tokens() const { return seq_len_ + 1; }
  int64_t size() const { return first_window_.back(); }  // number of windows
  // Copies window `index` into `out` (exactly seq_len + 1 tokens).
  void read(int64_t index, std::span<int32_t> out) const;
  // The shard and the offset of its first token, for messages and tests.
  std::pair<int64_t, int64_t> locate(int64_t index) const;

 private:
  const TokenDataset* dataset_;
  int64_t seq_len_;
  std::vector<int64_t> first_window_;  // per shard, then the total: size shards + 1
};

// Paths matching `pattern`, sorted; empty when nothing matches. Throws InputError on a glob error.
std::vector<std::string> expand_glob(const std::string& pattern, const std::string& name);

}  // namespace nsa
