// A small JSON reader for one line of a .jsonl file: checks that the line is one well-formed JSON object
// (RFC 8259) and returns the decoded value of one of its top-level string fields, as UTF-8 (escapes
// decoded, \uXXXX surrogate pairs combined). Nothing else of the object is kept.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nsa::data_tools {

// Throws InputError "<where>: ..." on malformed JSON (with the 1-based column), an unpaired surrogate
// escape, a missing field, or a field whose value is not a string. When a key repeats, the first wins.
std::string json_string_field(std::string_view line, std::string_view field, std::string_view where);

// Appends the UTF-8 encoding of a code point (<= 0x10FFFF, not a surrogate) to `out`.
void append_utf8(uint32_t code_point, std::string& out);

}  // namespace nsa::data_tools
