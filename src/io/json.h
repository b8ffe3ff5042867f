// The one JSON reader and writer (RFC 8259) of nsa-train, for every JSON it exchanges with other software:
// safetensors headers and Hugging Face config.json (src/io, the checkpoint tools), tokenizer files
// (encoder.json, tokenizer.json) and .jsonl documents (data_tools). The callers differ only in ParseOptions.
// It is a library of its own, nsa_json (src/io/CMakeLists.txt): JSON is a file format like the others of
// src/io, but it needs nothing of HDF5, so the data tools link it without linking nsa_io.
//
// The reader refuses anything the RFC does not allow (trailing commas, comments, NaN, leading zeros, bad
// escapes, unpaired surrogates, control characters in strings) and, by default, invalid UTF-8 and
// duplicate object keys. Numbers keep their text, so 64-bit offsets are read exactly. Every value knows the
// document's name and its path in it ("model.vocab", "added_tokens[3].id"), so the checked reads (as_*,
// at) report "<document>: <path>: expected ..., got ...".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nsa::json {

struct ParseOptions {
  // Repeated keys in one object: refused (a safetensors header must mean one thing), or all kept in order,
  // find() and at() returning the first.
  bool first_key_wins = false;
  // Strings must be UTF-8 (RFC 8259 section 8.1); false passes their bytes through as they are (the data
  // tools tokenize bytes, as they do a text file's).
  bool check_utf8 = true;
  // The text must be an object (a .jsonl record): anything else is refused at its first byte.
  bool object_root = false;
  // Errors point at "line L, column C" (1-based, in bytes); with one_line at "column C", for a text that is
  // one line of a file whose line number `where` already holds ("data.jsonl:7").
  bool one_line = false;
  // Levels of nesting below the root; deeper is refused (the reader recurses once per level).
  int max_depth = 64;
};

class Value {
 public:
  enum class Kind { null, boolean, number, string, array, object };
  using Member = std::pair<std::string, Value>;

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  bool is_null() const { return kind_ == Kind::null; }
  static const char* kind_name(Kind k);  // "an object", "a string", ...

  // Unchecked reads: a value of another kind reads as false, "" or empty.
  bool boolean() const { return boolean_; }
  const std::string& text() const { return text_; }  // a string's value, or a number's literal text
  const std::vector<Value>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }
  // A number that is a non-negative integer literal fitting uint64 (no fraction, no exponent).
  bool to_uint64(uint64_t* out) const;
  // A number as a double (finite).
  bool to_double(double* out) const;

  // The (first) member named `key`, or nullptr; InputError when this is not an object.
  const Value* find(std::string_view key) const;

  // Checked reads: InputError "<document>: <path>: expected <kind>, got <kind>" for a value of another kind.
  bool as_bool() const;
  const std::string& as_string() const;
  int64_t as_int() const;  // a number that is a whole number in [-2^53, 2^53]
  const std::vector<Value>& as_array() const;
  const std::vector<Member>& as_object() const;
  const Value& at(std::string_view key) const;  // find(), a missing member being an InputError

  const std::string& path() const { return path_; }  // "" for the root
  // "<document>: <path>: " ("<document>: " at the root), to start a message about this value.
  std::string where() const;

 private:
  friend class Parser;
  [[noreturn]] void wrong_kind(const char* expected) const;

  Kind kind_ = Kind::null;
  bool boolean_ = false;
  std::string text_;
  std::vector<Value> items_;
  std::vector<Member> members_;
  std::string path_;
  std::shared_ptr<const std::string> document_;  // the `where` of parse(), shared by all values of a text
};

// Parses one JSON text (surrounding whitespace allowed). Throws InputError "<where>: malformed JSON at line
// L, column C: <what>" (or "at column C", see ParseOptions::one_line) on any error.
Value parse(std::string_view text, const std::string& where, const ParseOptions& options = {});

// Builds JSON text. Keys and values are appended in call order; `pretty` indents by two spaces.
class Writer {
 public:
  explicit Writer(bool pretty = false) : pretty_(pretty) {}
  Writer& begin_object() { return open('{'); }
  Writer& end_object() { return close('}'); }
  Writer& begin_array() { return open('['); }
  Writer& end_array() { return close(']'); }
  Writer& key(std::string_view name);
  Writer& value(std::string_view s);
  Writer& value(const char* s) { return value(std::string_view(s)); }
  Writer& value(const std::string& s) { return value(std::string_view(s)); }
  Writer& value(int64_t v) { return literal(std::to_string(v)); }
  Writer& value(uint64_t v) { return literal(std::to_string(v)); }
  Writer& value(int v) { return value(static_cast<int64_t>(v)); }
  Writer& value(double v);  // shortest text that reads back to the same double; finite only
  Writer& value(bool v) { return literal(v ? "true" : "false"); }
  Writer& null() { return literal("null"); }
  const std::string& str() const { return out_; }

 private:
  Writer& open(char bracket);
  Writer& close(char bracket);
  Writer& literal(std::string_view text);  // a value written as it is
  void before_value();
  void newline();
  bool pretty_;
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

// Appends `s` as a JSON string literal: quotes, '"' and '\' escaped, control characters as \n, \r, \t or
// \u00XX. Bytes that are not valid UTF-8 become U+FFFD (counted in *replaced when given), so the output is
// always valid JSON.
void append_quoted(std::string_view s, std::string& out, int64_t* replaced = nullptr);
// The same, as a new string.
std::string quote(std::string_view s);

// Appends the UTF-8 encoding of a code point (<= U+10FFFF, not a surrogate): what a \uXXXX escape means.
void append_utf8(uint32_t code_point, std::string& out);

}  // namespace nsa::json
