// Encoding many texts on several threads with a result that does not depend on the thread count: the
// texts are cut into units (a long document at safe cuts, pretokenizer.h), threads take units in turn, and
// each unit's ids go to its own slot, read back in unit order.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "bpe_tokenizer.h"

namespace nsa::data_tools {

struct TextUnit {
  std::string_view text;
  int64_t input_bytes = 0;  // its share of the input file's bytes, for progress
};

// Appends the units of one document: pieces of about `target_bytes`, each ending at a safe cut (for the
// byte-level fallback any byte is one); a document with no safe cut stays whole. Shares `input_bytes`
// among them in proportion to their length.
void cut_into_units(std::string_view document, int64_t input_bytes, size_t target_bytes, bool any_cut,
                    std::vector<TextUnit>& units);

class ParallelEncoder {
 public:
  ParallelEncoder(const BpeTokenizer& tokenizer, int threads);

  int threads() const { return static_cast<int>(states_.size()); }

  // results[i] = the ids of units[i]. `progress(bytes, tokens)` is called on the calling thread now and
  // then with the input bytes and tokens finished so far in this call.
  void encode(std::span<const TextUnit> units, std::vector<std::vector<uint32_t>>& results,
              const std::function<void(int64_t, int64_t)>& progress);

  // Piece-cache lookups over all threads so far.
  int64_t cache_hits() const;
  int64_t cache_misses() const;

 private:
  const BpeTokenizer& tokenizer_;
  std::vector<EncodeState> states_;
};

}  // namespace nsa::data_tools
