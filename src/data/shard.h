// One token shard in llm.c's format, memory-mapped read-only, and the writer used by the tools and tests.
//
// Layout (little-endian): a header of 256 int32 — [0] magic 20240520, [1] version (1: uint16 tokens,
// 2: uint32 tokens), [2] token count, the rest zero — followed by exactly `count` tokens. Opening checks
// all of it (a truncated shard or trailing bytes are errors); every failure is a one-line nsa::InputError
// that starts with the file's path.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace nsa {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int64_t kShardHeaderInts = 256;
inline constexpr int64_t kShardHeaderBytes = kShardHeaderInts * 4;

class Shard {
 public:
  // Maps `path` and validates the header against the file size. Throws InputError.
  static Shard open(const std::string& path);

  Shard(Shard&& other) noexcept;
  Shard& operator=(Shard&& other) noexcept;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();

  const std::string& path() const { return path_; }
  int version() const { return version_; }
  int bytes_per_token() const { return version_ == 1 ? 2 : 4; }
  int64_t size() const { return count_; }  // number of tokens

  uint32_t token(int64_t index) const;
  // Copies tokens [begin, begin + out.size()) into `out` (bounds checked).
  void read(int64_t begin, std::span<int32_t> out) const;

  // Index of the first token >= vocab_size, if any (scans the whole shard).
  std::optional<int64_t> find_token_at_least(uint64_t vocab_size) const;
  // Throws InputError naming the shard, the position and the token when a token is >= vocab_size.
  void check_vocab(int64_t vocab_size) const;
  // Smallest and largest token (0, 0 for an empty shard).
  std::pair<uint32_t, uint32_t> min_max() const;

 private:
  Shard() = default;
  void release() noexcept;

  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;  // the byte after the header
  int version_ = 0;
  int64_t count_ = 0;
};

// Writes a shard atomically (a temporary file beside `path`, then rename). Version 1 stores uint16 and
// requires every token < 65536; version 2 stores uint32. Throws InputError on a bad argument or I/O error.
void write_shard(const std::string& path, std::span<const uint32_t> tokens, int version);

}  // namespace nsa
