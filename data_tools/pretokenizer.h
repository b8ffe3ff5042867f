// Pre-tokenisation: the text is cut into pieces before BPE, exactly as a regex's successive matches would
// cut it (leftmost-first alternation, greedy runs, the backtracking of \s+(?!\S)), by a hand-written
// scanner per pattern. Two patterns are known:
//
//   kGpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   kLlama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//            \s*[\r\n]+|\s+(?!\S)|\s+             (Llama 3's, which is also tiktoken's cl100k_base)
//
// Classes: char_class.h (\s is ECMAScript's). (?i:...) folds case the Unicode way, so 'ſ (U+017F, long s)
// is a contraction like 's. Invalid UTF-8 bytes count as "other" characters (utf8.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace nsa::data_tools {

enum class SplitPattern { kGpt2, kLlama3 };

// The regex as written in tokenizer.json files (GPT-2's with \p escapes, Llama 3's with (?i:...)).
std::string_view split_pattern_regex(SplitPattern pattern);
const char* split_pattern_name(SplitPattern pattern);  // "GPT-2", "Llama-3"

// The pattern a regex spells, or nothing. Besides the two texts above it knows tiktoken's spelling of
// cl100k_base ('(?i:[sdmt]|ll|ve|re) and possessive quantifiers), which matches the same pieces.
std::optional<SplitPattern> recognize_split_pattern(std::string_view regex);

// The end of the piece that starts at `begin` (begin < text.size()); the pieces of a text are
// [0, e1), [e1, e2), ... up to text.size().
size_t piece_end(SplitPattern pattern, std::string_view text, size_t begin);

// Whether `text` may be cut at `at` (0 < at < size) into two texts whose pieces, together, are the
// pieces of the whole: true where a space follows a printable ASCII character (for both patterns, the piece
// holding that character ends there, and no piece looks back). Used to spread one long document over
// threads.
inline bool is_safe_cut(std::string_view text, size_t at) {
  return text[at] == ' ' && text[at - 1] > ' ' && text[at - 1] < 0x7F;
}

}  // namespace nsa::data_tools
