// Decoding one UTF-8 character at a time, for the pre-tokenisation scanners. Input text need not be valid
// UTF-8: a byte that does not start a well-formed sequence (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF) is one character of its own, kInvalidByte, which the scanners treat like
// punctuation (class "other") and the byte-level BPE encodes as the byte it is. Nothing is lost.
#pragma once

#include <cstdint>
#include <string_view>

namespace nsa::data_tools {

inline constexpr uint32_t kInvalidByte = 0xFFFFFFFF;

struct Utf8Char {
  uint32_t code_point;  // kInvalidByte for a byte that is not part of a well-formed sequence
  uint32_t length;      // bytes, 1..4
};

// The character starting at text[i] (i < text.size()).
inline Utf8Char decode_utf8(std::string_view text, size_t i) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  const uint32_t b0 = s[i];
  if (b0 < 0x80) return {b0, 1};
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) return {((b0 & 0x1F) << 6) | (s[i + 1] & 0x3F), 2};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (cont(1) && cont(2)) {
      const uint32_t cp = ((b0 & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (cont(1) && cont(2) && cont(3)) {
      const uint32_t cp =
          ((b0 & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
    }
  }
  return {kInvalidByte, 1};
}

}  // namespace nsa::data_tools
