// A small, strict JSON reader and writer (RFC 8259) for the files the checkpoint tools exchange with other
// software: safetensors headers and Hugging Face config.json. The reader refuses anything the RFC does not
// allow (trailing commas, comments, NaN, bad escapes, invalid UTF-8, unpaired surrogates) and, beyond it,
// duplicate object keys; numbers keep their text, so 64-bit offsets are read exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nsa::json {

class Value {
 public:
  enum class Kind { null, boolean, number, string, array, object };

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  bool boolean() const { return boolean_; }
  const std::string& text() const { return text_; }  // a string's value, or a number's literal text
  const std::vector<Value>& items() const { return items_; }
  const std::vector<std::pair<std::string, Value>>& members() const { return members_; }
  const Value* find(std::string_view key) const;  // object member or nullptr

  // A number that is a non-negative integer literal fitting uint64 (no fraction, no exponent).
  bool to_uint64(uint64_t* out) const;
  // A number as a double (finite).
  bool to_double(double* out) const;

  static const char* kind_name(Kind k);  // "an object", "a string", ...

 private:
  friend class Parser;
  Kind kind_ = Kind::null;
  bool boolean_ = false;
  std::string text_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

// Parses one JSON text (surrounding whitespace allowed). Throws InputError "<where>: invalid JSON at byte
// <n>: <what>" on any error. Nesting deeper than 64 levels is refused.
Value parse(std::string_view text, const std::string& where);

// Builds JSON text. Keys and values are appended in call order; `pretty` indents by two spaces.
class Writer {
 public:
  explicit Writer(bool pretty = false) : pretty_(pretty) {}
  Writer& begin_object();
  Writer& end_object();
  Writer& begin_array();
  Writer& end_array();
  Writer& key(std::string_view name);
  Writer& value(std::string_view s);
  Writer& value(const char* s) { return value(std::string_view(s)); }
  Writer& value(const std::string& s) { return value(std::string_view(s)); }
  Writer& value(int64_t v);
  Writer& value(uint64_t v);
  Writer& value(int v) { return value(static_cast<int64_t>(v)); }
  Writer& value(double v);  // shortest text that reads back to the same double; finite only
  Writer& value(bool v);
  Writer& null();
  const std::string& str() const { return out_; }

 private:
  void before_value();
  void newline();
  bool pretty_;
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

// The JSON string literal of `s` (quotes included; control characters, '"' and '\' escaped).
std::string quote(std::string_view s);

}  // namespace nsa::json
