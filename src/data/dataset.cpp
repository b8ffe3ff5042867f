#include "data/dataset.h"

#include <glob.h>

#include <algorithm>

#include "core/error.h"

namespace nsa {

std::vector<std::string> expand_glob(const std::string& pattern, const std::string& name) {
  glob_t found{};
  // GLOB_NOSORT: we sort by bytes below, independent of the locale's collation.
  const int rc = ::glob(pattern.c_str(), GLOB_ERR | GLOB_NOSORT, nullptr, &found);
  std::vector<std::string> paths;
  if (rc == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) paths.emplace_back(found.gl_pathv[i]);
  }
  ::globfree(&found);
  if (rc == GLOB_ABORTED) throw InputError(str(name, ": cannot read the directories of '", pattern, "'"));
  if (rc == GLOB_NOSPACE) throw InputError(str(name, ": out of memory expanding '", pattern, "'"));
  std::sort(paths.begin(), paths.end());
  return paths;
}

TokenDataset TokenDataset::open(const std::string& glob_pattern, int64_t vocab_size,
                                const std::string& name) {
  if (glob_pattern.empty()) throw InputError(str(name, ": empty file pattern"));
  const std::vector<std::string> paths = expand_glob(glob_pattern, name);
  if (paths.empty()) throw InputError(str(name, ": no files match '", glob_pattern, "'"));
  TokenDataset dataset = from_paths(paths, vocab_size, name);
  dataset.pattern_ = glob_pattern;
  return dataset;
}

TokenDataset TokenDataset::from_paths(const std::vector<std::string>& paths, int64_t vocab_size,
                                      const std::string& name) {
  if (paths.empty()) throw InputError(str(name, ": no shard files given"));
  TokenDataset dataset;
  dataset.name_ = name;
  dataset.vocab_size_ = vocab_size;
  dataset.shards_.reserve(paths.size());
  try {
    for (const std::string& path : paths) {
      Shard shard = Shard::open(path);
      if (vocab_size > 0) shard.check_vocab(vocab_size);
      dataset.total_tokens_ += shard.size();
      dataset.shards_.push_back(std::move(shard));
    }
  } catch (const InputError& e) {
    throw InputError(str(name, ": ", e.what()));  // say which dataset the bad shard belongs to
  }
  return dataset;
}

Windows TokenDataset::windows(int64_t seq_len) const { return Windows(*this, seq_len); }

Windows::Windows(const TokenDataset& dataset, int64_t seq_len) : dataset_(&dataset), seq_len_(seq_len) {
  NSA_CHECK(seq_len >= 1, "[data] seq_len must be >= 1, got ", seq_len);
  first_window_.reserve(dataset.shards().size() + 1);
  int64_t total = 0;
  for (const Shard& shard : dataset.shards()) {
    first_window_.push_back(total);
    total += shard.size() / window_tokens();
  }
  first_window_.push_back(total);
}

std::pair<int64_t, int64_t> Windows::locate(int64_t index) const {
  NSA_CHECK(index >= 0 && index < size(), "[data] window ", index, " out of range (", size(), " windows)");
  // The last shard whose first window is <= index; empty shards share their neighbour's start and are
  // skipped because upper_bound lands after all of them.
  const auto it = std::upper_bound(first_window_.begin(), first_window_.end(), index);
  const int64_t shard = (it - first_window_.begin()) - 1;
  return {shard, (index - first_window_[shard]) * window_tokens()};
}

void Windows::read(int64_t index, std::span<int32_t> out) const {
  NSA_CHECK(static_cast<int64_t>(out.size()) == window_tokens(), "[data] window buffer holds ", out.size(),
            " tokens, expected ", window_tokens());
  const auto [shard, offset] = locate(index);
  dataset_->shards()[shard].read(offset, out);
}

}  // namespace nsa
