#include "byte_level.h"

#include "io/json.h"
#include "utf8.h"

namespace nsa::data_tools {

namespace {

std::array<uint32_t, 256> make_code_points() {
  std::array<uint32_t, 256> cp{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cp[b] = printable ? b : next++;
  }
  return cp;
}

// Code point (< 324) -> byte + 1, 0 where none.
std::array<uint16_t, 324> make_inverse() {
  std::array<uint16_t, 324> inverse{};
  const std::array<uint32_t, 256>& cp = byte_level_code_points();
  for (uint32_t b = 0; b < 256; ++b) inverse[cp[b]] = static_cast<uint16_t>(b + 1);
  return inverse;
}

}  // namespace

const std::array<uint32_t, 256>& byte_level_code_points() {
  static const std::array<uint32_t, 256> table = make_code_points();
  return table;
}

std::optional<std::string> bytes_from_byte_level(std::string_view text) {
  static const std::array<uint16_t, 324> inverse = make_inverse();
  std::string bytes;
  bytes.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8(text, i);
    if (c.code_point >= inverse.size() || inverse[c.code_point] == 0) return std::nullopt;
    bytes.push_back(static_cast<char>(inverse[c.code_point] - 1));
    i += c.length;
  }
  return bytes;
}

std::string byte_level_from_bytes(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) json::append_utf8(byte_level_code_points()[b], out);
  return out;
}

}  // namespace nsa::data_tools
