// GPT-2's byte-level alphabet: vocabulary files write each byte of a token as one printable code point
// (bytes_to_unicode in GPT-2's encoder.py): the bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
// themselves; the other 68 bytes, in increasing order, become U+0100, U+0101, ... (so a space is 'Ġ',
// U+0120, and a newline 'Ċ', U+010A). encoder.json, vocab.bpe and a byte-level tokenizer.json's vocab
// and merges are written in it; the tokenizer works on the bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nsa::data_tools {

// The code point that stands for each byte.
const std::array<uint32_t, 256>& byte_level_code_points();

// The bytes a byte-level string stands for, or nothing when it holds a character outside the alphabet
// (or is not valid UTF-8).
std::optional<std::string> bytes_from_byte_level(std::string_view text);

// The byte-level spelling of raw bytes.
std::string byte_level_from_bytes(std::string_view bytes);

}  // namespace nsa::data_tools
