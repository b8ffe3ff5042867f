#include "shard_sink.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

#include "core/error.h"
#include "data/shard.h"

namespace nsa::data_tools {

namespace fs = std::filesystem;

namespace {

constexpr int kMinDigits = 3;

int digits_for(int64_t count) {
  int digits = 1;
  for (int64_t last = std::max<int64_t>(count - 1, 0); last >= 10; last /= 10) ++digits;
  return std::max(digits, kMinDigits);
}

// Whether `name` is "<prefix>_<digits>.bin".
bool is_shard_name(const std::string& name, const std::string& prefix) {
  const std::string head = prefix + "_", tail = ".bin";
  if (name.size() <= head.size() + tail.size()) return false;
  if (name.compare(0, head.size(), head) != 0) return false;
  if (name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return false;
  return std::all_of(name.begin() + head.size(), name.end() - tail.size(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

ShardSink::ShardSink(std::string out_dir, std::string prefix, int64_t shard_tokens, int version)
    : out_dir_(std::move(out_dir)),
      prefix_(std::move(prefix)),
      shard_tokens_(shard_tokens),
      version_(version) {
  NSA_CHECK(shard_tokens_ >= 1, "[shard_sink] shard_tokens must be >= 1, got ", shard_tokens_);
  std::error_code ec;
  fs::create_directories(out_dir_, ec);
  if (ec) throw InputError(str(out_dir_, ": cannot create the output directory: ", ec.message()));
}

std::string ShardSink::path_for(int64_t index, int width) const {
  char number[32];
  std::snprintf(number, sizeof(number), "%0*lld", width, static_cast<long long>(index));
  return (fs::path(out_dir_) / (prefix_ + "_" + number + ".bin")).string();
}

void ShardSink::append(std::span<const uint32_t> tokens) {
  NSA_CHECK(!finished_, "[shard_sink] append after finish");
  size_t taken = 0;
  while (taken < tokens.size()) {
    const size_t room = static_cast<size_t>(shard_tokens_) - pending_.size();
    const size_t n = std::min(room, tokens.size() - taken);
    pending_.insert(pending_.end(), tokens.begin() + taken, tokens.begin() + taken + n);
    taken += n;
    if (pending_.size() == static_cast<size_t>(shard_tokens_)) flush_shard();
  }
  total_ += static_cast<int64_t>(tokens.size());
}

void ShardSink::flush_shard() {
  write_shard(path_for(shards_written_, kMinDigits), pending_, version_);
  ++shards_written_;
  pending_.clear();
}

std::vector<std::string> ShardSink::finish() {
  NSA_CHECK(!finished_, "[shard_sink] finish called twice");
  finished_ = true;
  if (!pending_.empty()) flush_shard();

  // Past 1000 shards the numbers need more digits: rename so that every name has the same width.
  const int width = digits_for(shards_written_);
  std::vector<std::string> paths;
  for (int64_t i = 0; i < shards_written_; ++i) {
    paths.push_back(path_for(i, width));
    if (width != kMinDigits) {
      std::error_code ec;
      fs::rename(path_for(i, kMinDigits), paths.back(), ec);
      if (ec) throw InputError(str(paths.back(), ": cannot rename shard: ", ec.message()));
    }
  }

  std::set<std::string> written;
  for (const std::string& path : paths) written.insert(fs::path(path).filename().string());
  std::error_code ec;
  int64_t removed = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(out_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!is_shard_name(name, prefix_) || written.count(name) > 0) continue;
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  if (removed > 0) {
    std::fprintf(stderr, "nsa-data: removed %lld %s_*.bin shard(s) of an earlier run from %s\n",
                 static_cast<long long>(removed), prefix_.c_str(), out_dir_.c_str());
  }
  return paths;
}

}  // namespace nsa::data_tools
