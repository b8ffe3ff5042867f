#include "json_field.h"

#include <optional>

#include "core/error.h"

namespace nsa::data_tools {

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Nesting deeper than this is refused (the reader recurses once per level).
constexpr int kMaxDepth = 256;

class Reader {
 public:
  Reader(std::string_view text, std::string_view where) : s_(text), where_(where) {}

  // The whole line: one object, nothing after it but whitespace.
  std::optional<std::string> object_field(std::string_view field, std::string& kind_found) {
    skip_space();
    if (peek() != '{') fail(at_end() ? "expected a JSON object, got an empty line" : "expected '{'");
    ++i_;
    std::optional<std::string> result;
    skip_space();
    if (peek() == '}') {
      ++i_;
    } else {
      while (true) {
        skip_space();
        if (peek() != '"') fail("expected a string key");
        std::string key;
        read_string(&key);
        skip_space();
        if (peek() != ':') fail("expected ':' after the key");
        ++i_;
        skip_space();
        if (key == field && !result && kind_found.empty()) {
          kind_found = value_kind();
          if (peek() == '"') {
            std::string value;
            read_string(&value);
            result = std::move(value);
          } else {
            skip_value(1);
          }
        } else {
          skip_value(1);
        }
        skip_space();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        if (peek() == '}') {
          ++i_;
          break;
        }
        fail("expected ',' or '}' in an object");
      }
    }
    skip_space();
    if (!at_end()) fail("unexpected text after the object");
    return result;
  }

 private:
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(str(where_, ": malformed JSON at column ", i_ + 1, ": ", what));
  }

  void skip_space() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  std::string value_kind() const {
    switch (peek()) {
      case '"':
        return "a string";
      case '{':
        return "an object";
      case '[':
        return "an array";
      case 't':
      case 'f':
        return "a boolean";
      case 'n':
        return "null";
      default:
        return "a number";
    }
  }

  void skip_value(int depth) {
    if (depth > kMaxDepth) fail(str("nesting deeper than ", kMaxDepth, " levels"));
    const char c = peek();
    if (c == '"') {
      read_string(nullptr);
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      skip_space();
      if (peek() == close) {
        ++i_;
        return;
      }
      while (true) {
        skip_space();
        if (c == '{') {
          if (peek() != '"') fail("expected a string key");
          read_string(nullptr);
          skip_space();
          if (peek() != ':') fail("expected ':' after the key");
          ++i_;
          skip_space();
        }
        skip_value(depth + 1);
        skip_space();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        if (peek() == close) {
          ++i_;
          return;
        }
        fail(c == '{' ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
      }
    } else if (c == 't' || c == 'f' || c == 'n') {
      const std::string_view word = c == 't' ? "true" : c == 'f' ? "false" : "null";
      if (s_.substr(i_, word.size()) != word) fail("expected a value");
      i_ += word.size();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number();
    } else {
      fail(at_end() ? "unexpected end of line, expected a value" : "expected a value");
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  void number() {
    auto digits = [&] {
      const size_t start = i_;
      while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == start) fail("expected a digit in a number");
    };
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else {
      digits();
    }
    if (peek() == '.') {
      ++i_;
      digits();
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      digits();
    }
  }

  // Four hex digits after "\u"; errors point at the escape's backslash.
  uint32_t hex4(size_t escape_start) {
    auto bad = [&] {
      i_ = escape_start;
      fail("expected four hex digits after \\u");
    };
    if (i_ + 4 > s_.size()) bad();
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_];
      uint32_t d;
      if (h >= '0' && h <= '9') {
        d = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        d = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        d = h - 'A' + 10;
      } else {
        bad();
      }
      v = v * 16 + d;
      ++i_;
    }
    return v;
  }

  // Reads a string starting at the opening quote; decodes into `out` when given.
  void read_string(std::string* out) {
    ++i_;  // the opening quote
    while (true) {
      if (at_end()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return;
      }
      if (c < 0x20) fail("control character in a string (must be escaped)");
      if (c != '\\') {
        // Copy a run of plain bytes at once (UTF-8 passes through unchanged).
        const size_t start = i_;
        while (!at_end() && s_[i_] != '"' && s_[i_] != '\\' && static_cast<unsigned char>(s_[i_]) >= 0x20)
          ++i_;
        if (out != nullptr) out->append(s_.substr(start, i_ - start));
        continue;
      }
      ++i_;  // the backslash
      if (at_end()) fail("unterminated escape");
      const char e = s_[i_++];
      char plain = 0;
      switch (e) {
        case '"':
          plain = '"';
          break;
        case '\\':
          plain = '\\';
          break;
        case '/':
          plain = '/';
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t cp = hex4(i_ - 2);
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            i_ -= 6;
            fail("unpaired low surrogate escape");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(i_, 2) != "\\u") {
              i_ -= 6;
              fail("high surrogate escape not followed by a low surrogate escape");
            }
            i_ += 2;
            const uint32_t low = hex4(i_ - 2);
            if (low < 0xDC00 || low > 0xDFFF) {
              i_ -= 6;
              fail("high surrogate escape not followed by a low surrogate escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          if (out != nullptr) append_utf8(cp, *out);
          continue;
        }
        default:
          i_ -= 2;
          fail(str("invalid escape '\\", e, "'"));
      }
      if (out != nullptr) out->push_back(plain);
    }
  }

  std::string_view s_;
  std::string_view where_;
  size_t i_ = 0;
};

}  // namespace

std::string json_string_field(std::string_view line, std::string_view field, std::string_view where) {
  Reader reader(line, where);
  std::string kind;
  std::optional<std::string> value = reader.object_field(field, kind);
  if (kind.empty()) throw InputError(str(where, ": no field '", field, "' in the object"));
  if (!value) throw InputError(str(where, ": field '", field, "' is ", kind, ", expected a string"));
  return std::move(*value);
}

}  // namespace nsa::data_tools
