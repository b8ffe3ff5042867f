#include "pretokenizer.h"

#include "char_class.h"
#include "utf8.h"

namespace nsa::data_tools {

namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// The same pattern as tiktoken writes cl100k_base (possessive quantifiers, [sdmt]): the same pieces.
constexpr std::string_view kCl100kRegex =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";

struct Scanner {
  std::string_view text;

  Utf8Char at(size_t i) const { return decode_utf8(text, i); }
  CharClass cls(size_t i) const { return char_class(at(i).code_point); }
  size_t size() const { return text.size(); }

  // The end of the run of class `k` that starts at i (i itself may be the end).
  size_t run(size_t i, CharClass k) const {
    while (i < text.size()) {
      const Utf8Char c = at(i);
      if (char_class(c.code_point) != k) break;
      i += c.length;
    }
    return i;
  }

  // The whitespace alternatives \s+(?!\S)|\s+ at i (a space): the whole run at the end of the text,
  // otherwise the run less its last character (which then joins what follows) when that leaves one.
  size_t space_run_end(size_t i) const {
    size_t last_start = i, j = i;
    while (j < text.size()) {
      const Utf8Char c = at(j);
      if (char_class(c.code_point) != CharClass::kSpace) break;
      last_start = j;
      j += c.length;
    }
    if (j == text.size() || last_start == i) return j;
    return last_start;
  }
};

// 's 't 're 've 'm 'll 'd after the apostrophe at i: the end, or 0. Case-sensitive (GPT-2's pattern), or under
// (?i:...) (Llama 3's): ASCII letters of either case, and U+017F (long s, UTF-8 C5 BF) for s.
size_t contraction_end(std::string_view t, size_t i, bool ignore_case) {
  const size_t j = i + 1;
  if (j >= t.size()) return 0;
  auto is = [&](size_t k, char lower) {
    return k < t.size() && (ignore_case ? (t[k] | 0x20) == lower : t[k] == lower);
  };
  if (ignore_case && t[j] == '\xC5' && j + 1 < t.size() && t[j + 1] == '\xBF') return j + 2;
  switch (ignore_case ? t[j] | 0x20 : t[j]) {
    case 's':
    case 't':
    case 'm':
    case 'd':
      return j + 1;
    case 'r':
    case 'v':
      return is(j + 1, 'e') ? j + 2 : 0;
    case 'l':
      return is(j + 1, 'l') ? j + 2 : 0;
    default:
      return 0;
  }
}

size_t gpt2_piece_end(std::string_view text, size_t i) {
  const Scanner s{text};
  if (text[i] == '\'') {
    if (const size_t end = contraction_end(text, i, false)) return end;
  }
  const Utf8Char c = s.at(i);
  const CharClass k = char_class(c.code_point);
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ : an optional space, then a run of one class.
  if (c.code_point == ' ' && i + 1 < text.size()) {
    const Utf8Char next = s.at(i + 1);
    const CharClass nk = char_class(next.code_point);
    if (nk != CharClass::kSpace) return s.run(i + 1 + next.length, nk);
  }
  if (k != CharClass::kSpace) return s.run(i + c.length, k);
  return s.space_run_end(i);
}

size_t llama3_piece_end(std::string_view text, size_t i) {
  const Scanner s{text};
  if (text[i] == '\'') {
    if (const size_t end = contraction_end(text, i, true)) return end;
  }
  const Utf8Char c = s.at(i);
  const CharClass k = char_class(c.code_point);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (k == CharClass::kLetter) return s.run(i + c.length, CharClass::kLetter);
  const bool newline = c.code_point == '\r' || c.code_point == '\n';
  if (k != CharClass::kNumber && !newline && i + c.length < text.size()) {
    const Utf8Char next = s.at(i + c.length);
    if (char_class(next.code_point) == CharClass::kLetter) {
      return s.run(i + c.length + next.length, CharClass::kLetter);
    }
  }
  // \p{N}{1,3}
  if (k == CharClass::kNumber) {
    size_t j = i + c.length;
    for (int taken = 1; taken < 3 && j < text.size(); ++taken) {
      const Utf8Char d = s.at(j);
      if (char_class(d.code_point) != CharClass::kNumber) break;
      j += d.length;
    }
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t other_start = std::string_view::npos;
  if (k == CharClass::kOther) {
    other_start = i;
  } else if (c.code_point == ' ' && i + 1 < text.size() && s.cls(i + 1) == CharClass::kOther) {
    other_start = i + 1;
  }
  if (other_start != std::string_view::npos) {
    size_t j = s.run(other_start, CharClass::kOther);
    while (j < text.size() && (text[j] == '\r' || text[j] == '\n')) ++j;
    return j;
  }
  // A space. \s*[\r\n]+ : up to the last line break of the run, when the run has one.
  size_t j = i, after_break = 0;
  while (j < text.size()) {
    const Utf8Char d = s.at(j);
    if (char_class(d.code_point) != CharClass::kSpace) break;
    j += d.length;
    if (d.code_point == '\r' || d.code_point == '\n') after_break = j;
  }
  if (after_break != 0) return after_break;
  // \s+(?!\S)|\s+
  return s.space_run_end(i);
}

}  // namespace

std::string_view split_pattern_regex(SplitPattern pattern) {
  return pattern == SplitPattern::kGpt2 ? kGpt2Regex : kLlama3Regex;
}

const char* split_pattern_name(SplitPattern pattern) {
  return pattern == SplitPattern::kGpt2 ? "GPT-2" : "Llama-3";
}

std::optional<SplitPattern> recognize_split_pattern(std::string_view regex) {
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  if (regex == kLlama3Regex || regex == kCl100kRegex) return SplitPattern::kLlama3;
  return std::nullopt;
}

size_t piece_end(SplitPattern pattern, std::string_view text, size_t begin) {
  return pattern == SplitPattern::kGpt2 ? gpt2_piece_end(text, begin) : llama3_piece_end(text, begin);
}

}  // namespace nsa::data_tools
