#include "io/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/error.h"

namespace nsa::json {

namespace {

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: shortest form, no surrogates, at most
// U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t extra;
  uint32_t cp, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + extra >= s.size()) return 0;
  for (size_t k = 1; k <= extra; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return extra + 1;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ------------------------------------------------------------------------------------------------ reader

class Parser {
 public:
  Parser(std::string_view text, const std::string& where, const ParseOptions& options)
      : s_(text), document_(std::make_shared<const std::string>(where)), options_(options) {}

  Value document() {
    skip_space();
    if (options_.object_root && peek() != '{') fail(str("expected an object, found ", found()));
    Value root;
    value(root, 0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the value");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    std::string position;
    if (options_.one_line) {
      position = str("column ", at + 1);
    } else {
      size_t line = 1, line_start = 0;
      for (size_t k = 0; k < at && k < s_.size(); ++k) {
        if (s_[k] == '\n') ++line, line_start = k + 1;
      }
      position = str("line ", line, ", column ", at - line_start + 1);
    }
    throw InputError(str(*document_, ": malformed JSON at ", position, ": ", what));
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  // What stands at pos_, for "expected ..., found <it>": a word, a character, a byte, or the end.
  std::string found() const {
    if (pos_ >= s_.size()) return "the end";
    const char c = s_[pos_];
    if (is_letter(c)) {
      size_t end = pos_;
      while (end < s_.size() && end - pos_ < 16 && (is_letter(s_[end]) || is_digit(s_[end]))) ++end;
      return str("'", s_.substr(pos_, end - pos_), "'");
    }
    if (c >= 0x20 && c < 0x7F) return str("'", c, "'");
    char byte[16];
    std::snprintf(byte, sizeof byte, "byte 0x%02x", static_cast<unsigned char>(c));
    return byte;
  }

  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }

  // Consumes `c` when it is next (after whitespace).
  bool next_is(char c) {
    skip_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // Parses the value at pos_ into v, whose path the caller has set.
  void value(Value& v, int depth) {
    if (depth > options_.max_depth) fail(str("nested deeper than ", options_.max_depth, " levels"));
    v.document_ = document_;
    const char c = peek();
    if (c == '{') {
      v.kind_ = Value::Kind::object;
      object(v, depth);
    } else if (c == '[') {
      v.kind_ = Value::Kind::array;
      array(v, depth);
    } else if (c == '"') {
      v.kind_ = Value::Kind::string;
      v.text_ = string();
    } else if (c == '-' || is_digit(c)) {
      v.kind_ = Value::Kind::number;
      v.text_ = number();
    } else if (literal("true")) {
      v.kind_ = Value::Kind::boolean;
      v.boolean_ = true;
    } else if (literal("false")) {
      v.kind_ = Value::Kind::boolean;
    } else if (!literal("null")) {
      fail(str("expected a value, found ", found()));
    }
  }

  void object(Value& v, int depth) {
    ++pos_;  // {
    if (next_is('}')) return;
    std::set<std::string> keys;  // only when repeated keys are refused
    while (true) {
      skip_space();
      if (peek() != '"') fail("expected a string key");
      const size_t key_at = pos_;
      std::string key = string();
      if (!options_.first_key_wins && !keys.insert(key).second) {
        fail_at(key_at, str("duplicate key ", quote(key)));
      }
      if (!next_is(':')) fail("expected ':' after the key");
      skip_space();
      Value::Member& member = v.members_.emplace_back(std::move(key), Value());
      member.second.path_ = v.path_.empty() ? member.first : v.path_ + "." + member.first;
      value(member.second, depth + 1);
      if (next_is(',')) continue;
      if (next_is('}')) return;
      fail("expected ',' or '}' in an object");
    }
  }

  void array(Value& v, int depth) {
    ++pos_;  // [
    if (next_is(']')) return;
    while (true) {
      skip_space();
      Value& item = v.items_.emplace_back();
      item.path_ = v.path_ + "[" + std::to_string(v.items_.size() - 1) + "]";
      value(item, depth + 1);
      if (next_is(',')) continue;
      if (next_is(']')) return;
      fail("expected ',' or ']' in an array");
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, returned as written.
  std::string number() {
    const size_t start = pos_;
    auto digits = [&](const char* what) {
      const size_t from = pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
      if (pos_ == from) fail(what);
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (is_digit(peek())) fail("leading zero in a number");
    } else {
      digits("expected digits");
    }
    if (peek() == '.') {
      ++pos_;
      digits("expected digits after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      digits("expected digits in the exponent");
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  // The four hex digits of the \u escape whose backslash is at `escape`; pos_ is after its 'u'.
  uint32_t hex4(size_t escape) {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++pos_) {
      const char h = peek();
      const int d = is_digit(h)            ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) fail_at(escape, "expected four hex digits after \\u");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  // The string at pos_ (its opening quote), decoded. Errors about an escape point at its backslash.
  std::string string() {
    ++pos_;  // "
    std::string out;
    while (true) {
      // A run of bytes that stand for themselves, copied at once.
      const size_t run = pos_;
      while (pos_ < s_.size()) {
        const auto c = static_cast<unsigned char>(s_[pos_]);
        if (c < 0x20 || c == '"' || c == '\\' || (c >= 0x80 && options_.check_utf8)) break;
        ++pos_;
      }
      out.append(s_.substr(run, pos_ - run));
      if (pos_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("control character in a string (must be escaped)");
      if (c >= 0x80) {
        const size_t n = utf8_length(s_, pos_);
        if (n == 0) fail("invalid UTF-8");
        out.append(s_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      escape(out);
    }
  }

  // The escape at pos_ (its backslash), appended decoded.
  void escape(std::string& out) {
    const size_t start = pos_;
    if (++pos_ >= s_.size()) fail("unterminated escape");
    const char e = s_[pos_++];
    // The two-character escapes and what they stand for.
    constexpr std::string_view kEscape = "\"\\/bfnrt", kMeaning = "\"\\/\b\f\n\r\t";
    if (const size_t k = kEscape.find(e); k != std::string_view::npos) {
      out += kMeaning[k];
      return;
    }
    if (e != 'u') fail_at(start, str("invalid escape '\\", e, "'"));
    uint32_t cp = hex4(start);
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(start, "unpaired low surrogate escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      const size_t low_start = pos_;
      const char* unpaired = "high surrogate escape not followed by a low surrogate escape";
      if (!literal("\\u")) fail_at(start, unpaired);
      const uint32_t low = hex4(low_start);
      if (low < 0xDC00 || low > 0xDFFF) fail_at(low_start, unpaired);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(cp, out);
  }

  std::string_view s_;
  std::shared_ptr<const std::string> document_;
  const ParseOptions& options_;
  size_t pos_ = 0;
};

Value parse(std::string_view text, const std::string& where, const ParseOptions& options) {
  return Parser(text, where, options).document();
}

// ------------------------------------------------------------------------------------------------ values

const char* Value::kind_name(Kind k) {
  switch (k) {
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::number: return "a number";
    case Kind::string: return "a string";
    case Kind::array: return "an array";
    case Kind::object: return "an object";
  }
  return "?";
}

bool Value::to_uint64(uint64_t* out) const {
  if (kind_ != Kind::number || text_.empty() || text_.size() > 20) return false;
  if (text_.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  const unsigned long long v = std::strtoull(text_.c_str(), nullptr, 10);
  if (errno != 0) return false;
  *out = v;
  return true;
}

bool Value::to_double(double* out) const {
  if (kind_ != Kind::number) return false;
  errno = 0;
  const double v = std::strtod(text_.c_str(), nullptr);
  if (errno == ERANGE && std::abs(v) > 1.0) return false;
  if (!std::isfinite(v)) return false;
  *out = v;
  return true;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : as_object()) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string Value::where() const {
  const std::string document = document_ ? *document_ : std::string("<json>");
  return path_.empty() ? str(document, ": ") : str(document, ": ", path_, ": ");
}

void Value::wrong_kind(const char* expected) const {
  throw InputError(str(where(), "expected ", expected, ", got ", kind_name(kind_)));
}

bool Value::as_bool() const {
  if (kind_ != Kind::boolean) wrong_kind("a boolean");
  return boolean_;
}

const std::string& Value::as_string() const {
  if (kind_ != Kind::string) wrong_kind("a string");
  return text_;
}

int64_t Value::as_int() const {
  if (kind_ != Kind::number) wrong_kind("an integer");
  double v = 0;
  if (!to_double(&v) || v != std::floor(v) || std::fabs(v) > 9007199254740992.0) {
    throw InputError(str(where(), "expected an integer, got ", text_));
  }
  return static_cast<int64_t>(v);
}

const std::vector<Value>& Value::as_array() const {
  if (kind_ != Kind::array) wrong_kind("an array");
  return items_;
}

const std::vector<Value::Member>& Value::as_object() const {
  if (kind_ != Kind::object) wrong_kind("an object");
  return members_;
}

const Value& Value::at(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) {
    throw InputError(str(where(), "no member '", key, "'", path_.empty() ? " at the top level" : ""));
  }
  return *v;
}

// ------------------------------------------------------------------------------------------------ writer

void append_quoted(std::string_view s, std::string& out, int64_t* replaced) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = utf8_length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD
        if (replaced != nullptr) ++*replaced;
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

std::string quote(std::string_view s) {
  std::string out;
  append_quoted(s, out);
  return out;
}

void Writer::newline() {
  if (!pretty_) return;
  out_ += '\n';
  out_.append(2 * first_.size(), ' ');
}

void Writer::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    newline();
  }
}

Writer& Writer::open(char bracket) {
  before_value();
  out_ += bracket;
  first_.push_back(true);
  return *this;
}

Writer& Writer::close(char bracket) {
  const bool empty = first_.back();
  first_.pop_back();
  if (!empty) newline();
  out_ += bracket;
  return *this;
}

Writer& Writer::literal(std::string_view text) {
  before_value();
  out_ += text;
  return *this;
}

Writer& Writer::key(std::string_view name) {
  before_value();
  append_quoted(name, out_);
  out_ += pretty_ ? ": " : ":";
  after_key_ = true;
  return *this;
}

Writer& Writer::value(std::string_view s) {
  before_value();
  append_quoted(s, out_);
  return *this;
}

Writer& Writer::value(double v) {
  NSA_CHECK(std::isfinite(v), "[json] cannot write the non-finite number ", v);
  // Like Python's repr: the shortest digits that read back exactly, in positional notation for magnitudes
  // in [1e-4, 1e16), in exponent notation otherwise.
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  const double magnitude = std::abs(v);
  if (magnitude == 0 || (magnitude >= 1e-4 && magnitude < 1e16)) {
    for (int decimals = 0; decimals <= 20; ++decimals) {
      char fixed[64];
      std::snprintf(fixed, sizeof fixed, "%.*f", decimals, v);
      if (std::strtod(fixed, nullptr) == v) {
        std::snprintf(buf, sizeof buf, "%s", fixed);
        break;
      }
    }
  }
  std::string text = buf;
  // Mark a float as one ("10000.0"), as Python's json does, so readers keep the type.
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return literal(text);
}

}  // namespace nsa::json
