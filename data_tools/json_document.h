// A whole JSON file (RFC 8259) as a tree, for the tokenizer files (encoder.json, tokenizer.json). Objects
// keep their members in file order. Errors are InputError "<file>: malformed JSON at line L, column C:
// ..."; the typed accessors report "<file>: <path>: expected ..., got ...", with the path of the value
// ("model.vocab", "added_tokens[3].id").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nsa::data_tools {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  Kind kind() const { return kind_; }
  const std::string& path() const { return path_; }  // "" for the root
  bool is_null() const { return kind_ == Kind::kNull; }

  // Typed reads: throw InputError naming the file and this value's path on another kind.
  bool as_bool() const;
  const std::string& as_string() const;
  int64_t as_int() const;  // a number that is a whole number in [-2^53, 2^53]
  const std::vector<JsonValue>& as_array() const;
  const std::vector<std::pair<std::string, JsonValue>>& as_object() const;

  // A member of an object (first of repeated keys), or nullptr; throws if this is not an object.
  const JsonValue* find(std::string_view key) const;
  // The same, but a missing member is an InputError.
  const JsonValue& at(std::string_view key) const;

  // "a string", "an object", ...
  static const char* kind_name(Kind kind);
  // "<file>: <path>: " (or "<file>: " at the root), to start a message about this value.
  std::string where() const;

 private:
  friend class JsonParser;
  [[noreturn]] void wrong_kind(const char* expected) const;

  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
  std::string path_;
  std::shared_ptr<const std::string> file_;  // shared by every value of one document
};

// Parses `text`; `file` names it in messages.
JsonValue parse_json(std::string_view text, const std::string& file);
// Reads and parses a file.
JsonValue read_json_file(const std::string& path);

// Appends `text` as a JSON string literal (quotes, escapes; bytes that are not valid UTF-8 become
// U+FFFD, and their number is added to *replaced when given).
void append_json_string(std::string_view text, std::string& out, int64_t* replaced = nullptr);

}  // namespace nsa::data_tools
