#include "document_reader.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "brown_text.h"
#include "core/error.h"
#include "io/json.h"

namespace nsa::data_tools {

namespace {

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(str(path, ": read error"));
  return text;
}

std::string json_string_field(std::string_view line, std::string_view field, const std::string& where) {
  constexpr json::ParseOptions kJsonl{
      .first_key_wins = true, .check_utf8 = false, .object_root = true, .one_line = true, .max_depth = 256};
  const json::Value record = json::parse(line, where, kJsonl);
  const json::Value* value = record.find(field);
  if (value == nullptr) throw InputError(str(where, ": no field '", field, "' in the object"));
  if (!value->is(json::Value::Kind::string)) {
    const char* kind = json::Value::kind_name(value->kind());
    throw InputError(str(where, ": field '", field, "' is ", kind, ", expected a string"));
  }
  return value->text();
}

InputFormat parse_input_format(const std::string& name, const std::string& option) {
  if (name == "auto") return InputFormat::kAuto;
  if (name == "text") return InputFormat::kText;
  if (name == "jsonl") return InputFormat::kJsonl;
  if (name == "brown") return InputFormat::kBrown;
  throw InputError(str(option, ": expected auto, text, jsonl or brown, got '", name, "'"));
}

InputFormat input_format_of(const std::string& path, InputFormat format) {
  if (format != InputFormat::kAuto) return format;
  return path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0 ? InputFormat::kJsonl
                                                                             : InputFormat::kText;
}

void read_documents(const std::vector<std::string>& inputs, InputFormat format, const std::string& field,
                    const std::function<void(std::string&& text, int64_t input_bytes)>& on_document) {
  for (const std::string& path : inputs) {
    const InputFormat f = input_format_of(path, format);
    if (f == InputFormat::kJsonl) {
      std::ifstream in(path, std::ios::binary);
      if (!in) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
      std::string line;
      int64_t blank_bytes = 0;  // of blank lines, counted with the next document
      for (int64_t number = 1; std::getline(in, line); ++number) {
        const auto bytes = static_cast<int64_t>(line.size()) + 1;
        if (is_blank(line)) {
          blank_bytes += bytes;
          continue;
        }
        on_document(json_string_field(line, field, str(path, ":", number)), bytes + blank_bytes);
        blank_bytes = 0;
      }
      if (in.bad()) throw InputError(str(path, ": read error"));
      continue;
    }
    std::string text = read_file(path);
    const auto bytes = static_cast<int64_t>(text.size());
    if (f == InputFormat::kBrown) text = brown_plain_text(text, path);
    on_document(std::move(text), bytes);
  }
}

}  // namespace nsa::data_tools
