// ShardSink: a token stream written as consecutive shards DIR/<prefix>_000.bin, _001, ... of at most
// shard_tokens tokens each. Numbers have at least three digits and as many as the last one needs (all
// files of a run share the width, so the glob's byte order is the stream's order). finish() also removes
// shards of the same prefix left by an earlier run with more shards, so the glob sees only this run's files.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nsa::data_tools {

class ShardSink {
 public:
  ShardSink(std::string out_dir, std::string prefix, int64_t shard_tokens, int version);

  void append(std::span<const uint32_t> tokens);
  void push(uint32_t token) { append(std::span<const uint32_t>(&token, 1)); }
  // Writes the last partial shard (if any tokens are pending) and fixes names; returns the paths written.
  std::vector<std::string> finish();

  int64_t tokens() const { return total_; }

 private:
  void flush_shard();
  std::string path_for(int64_t index, int width) const;

  std::string out_dir_, prefix_;
  int64_t shard_tokens_;
  int version_;
  std::vector<uint32_t> pending_;
  int64_t shards_written_ = 0;
  int64_t total_ = 0;
  bool finished_ = false;
};

}  // namespace nsa::data_tools
