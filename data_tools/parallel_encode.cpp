#include "parallel_encode.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "pretokenizer.h"

namespace nsa::data_tools {

void cut_into_units(std::string_view document, int64_t input_bytes, size_t target_bytes, bool any_cut,
                    std::vector<TextUnit>& units) {
  const size_t first = units.size();
  size_t begin = 0;
  while (document.size() - begin > target_bytes + target_bytes / 2) {
    size_t at = begin + target_bytes;
    if (!any_cut) {
      while (at < document.size() && !is_safe_cut(document, at)) ++at;
    }
    if (at >= document.size()) break;
    units.push_back({document.substr(begin, at - begin), 0});
    begin = at;
  }
  units.push_back({document.substr(begin), 0});
  // Input bytes in proportion to the text; the last unit takes the rounding.
  int64_t given = 0;
  for (size_t i = first; i < units.size(); ++i) {
    units[i].input_bytes = i + 1 == units.size()
                               ? input_bytes - given
                               : static_cast<int64_t>(static_cast<double>(input_bytes) *
                                                      static_cast<double>(units[i].text.size()) /
                                                      static_cast<double>(document.size()));
    given += units[i].input_bytes;
  }
}

ParallelEncoder::ParallelEncoder(const BpeTokenizer& tokenizer, int threads)
    : tokenizer_(tokenizer), states_(static_cast<size_t>(std::max(threads, 1))) {}

void ParallelEncoder::encode(std::span<const TextUnit> units, std::vector<std::vector<uint32_t>>& results,
                             const std::function<void(int64_t, int64_t)>& progress) {
  results.resize(units.size());
  std::atomic<size_t> next{0};
  std::atomic<int64_t> bytes_done{0}, tokens_done{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;

  auto work = [&](EncodeState& state, bool caller) {
    try {
      for (size_t i; (i = next.fetch_add(1)) < units.size();) {
        results[i].clear();
        tokenizer_.encode(units[i].text, state, results[i]);
        bytes_done += units[i].input_bytes;
        tokens_done += static_cast<int64_t>(results[i].size());
        if (caller && progress) progress(bytes_done.load(), tokens_done.load());
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = units.size();
    }
  };
  std::vector<std::thread> helpers;
  const size_t wanted = std::min(states_.size(), units.size());
  for (size_t t = 1; t < wanted; ++t) helpers.emplace_back(work, std::ref(states_[t]), false);
  work(states_[0], true);
  for (std::thread& t : helpers) t.join();
  if (failure) std::rethrow_exception(failure);
  if (progress) progress(bytes_done.load(), tokens_done.load());
}

int64_t ParallelEncoder::cache_hits() const {
  int64_t n = 0;
  for (const EncodeState& s : states_) n += s.cache.hits;
  return n;
}

int64_t ParallelEncoder::cache_misses() const {
  int64_t n = 0;
  for (const EncodeState& s : states_) n += s.cache.misses;
  return n;
}

}  // namespace nsa::data_tools
