// The documents of input files, in order: a .jsonl file (or any file under --format jsonl) holds one JSON
// object per line whose string field `field` is a document (blank lines skipped); a tagged Brown corpus
// file (--format brown, brown_text.h) is one document, its plain text; any other file is one document, its
// bytes as they are.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace nsa::data_tools {

enum class InputFormat { kAuto, kText, kJsonl, kBrown };

// "auto", "text", "jsonl", "brown" -> the format; throws InputError naming `option` otherwise.
InputFormat parse_input_format(const std::string& name, const std::string& option);

// The format an input is read in under `format` (kAuto decides by the name: .jsonl or text).
InputFormat input_format_of(const std::string& path, InputFormat format);

// Calls on_document(text, input_bytes) for each document, where input_bytes are the bytes of the file it
// came from (a JSON line with its newline and any blank lines before it, a whole file). Throws InputError
// "file:line: ...".
void read_documents(const std::vector<std::string>& inputs, InputFormat format, const std::string& field,
                    const std::function<void(std::string&& text, int64_t input_bytes)>& on_document);

// The bytes of a whole file; InputError "<path>: cannot open: <reason>" or "<path>: read error".
std::string read_file(const std::string& path);

// The string field `field` of one .jsonl line, which must be one JSON object (io/json.h; its strings' bytes
// as they are, the first of repeated keys winning). Throws InputError "<where>: malformed JSON at column C:
// ...", "<where>: no field ..." or "<where>: field ... is a number, expected a string".
std::string json_string_field(std::string_view line, std::string_view field, const std::string& where);

}  // namespace nsa::data_tools
