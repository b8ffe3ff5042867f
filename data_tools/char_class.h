// The class of a code point as the pre-tokenisation patterns see it: a letter (\p{L}), a number (\p{N}),
// a space (ECMAScript's \s) or anything else. The tables (unicode/char_classes.inc) are generated from
// Python 3.11's unicodedata, Unicode 14.0.0, by unicode/gen_char_classes.py; ASCII is a 128-entry table.
#pragma once

#include <array>
#include <cstdint>

namespace nsa::data_tools {

enum class CharClass : uint8_t { kOther, kLetter, kNumber, kSpace };

namespace detail {
constexpr std::array<CharClass, 128> ascii_classes() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = CharClass::kNumber;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {
      t[c] = CharClass::kSpace;
    }
  }
  return t;
}
inline constexpr std::array<CharClass, 128> kAsciiClasses = ascii_classes();
}  // namespace detail

// The class of a code point at or above 128 (a binary search over the generated ranges).
CharClass non_ascii_char_class(uint32_t code_point);

inline CharClass char_class(uint32_t code_point) {
  return code_point < 128 ? detail::kAsciiClasses[code_point] : non_ascii_char_class(code_point);
}

}  // namespace nsa::data_tools
