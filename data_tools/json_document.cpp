#include "json_document.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "json_field.h"
#include "utf8.h"

namespace nsa::data_tools {

namespace {
constexpr int kMaxDepth = 256;
}

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& file)
      : s_(text), file_(std::make_shared<const std::string>(file)) {}

  JsonValue document() {
    JsonValue root;
    skip_space();
    value(root, "", 0);
    skip_space();
    if (i_ < s_.size()) fail("unexpected text after the value");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    size_t line = 1, column = 1;
    for (size_t k = 0; k < i_ && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw InputError(str(*file_, ": malformed JSON at line ", line, ", column ", column, ": ", what));
  }

  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  void expect_word(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) fail("expected a value");
    i_ += word.size();
  }

  void value(JsonValue& v, const std::string& path, int depth) {
    if (depth > kMaxDepth) fail(str("nesting deeper than ", kMaxDepth, " levels"));
    v.path_ = path;
    v.file_ = file_;
    const char c = peek();
    if (c == '{') {
      v.kind_ = JsonValue::Kind::kObject;
      ++i_;
      skip_space();
      if (peek() == '}') {
        ++i_;
        return;
      }
      while (true) {
        skip_space();
        if (peek() != '"') fail("expected a string key");
        std::string key = string();
        skip_space();
        if (peek() != ':') fail("expected ':' after the key");
        ++i_;
        skip_space();
        v.members_.emplace_back(std::move(key), JsonValue());
        auto& member = v.members_.back();
        value(member.second, path.empty() ? member.first : str(path, ".", member.first), depth + 1);
        skip_space();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        if (peek() == '}') {
          ++i_;
          return;
        }
        fail("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.kind_ = JsonValue::Kind::kArray;
      ++i_;
      skip_space();
      if (peek() == ']') {
        ++i_;
        return;
      }
      while (true) {
        skip_space();
        v.items_.emplace_back();
        value(v.items_.back(), str(path, "[", v.items_.size() - 1, "]"), depth + 1);
        skip_space();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        if (peek() == ']') {
          ++i_;
          return;
        }
        fail("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.kind_ = JsonValue::Kind::kString;
      v.string_ = string();
    } else if (c == 't' || c == 'f') {
      v.kind_ = JsonValue::Kind::kBool;
      v.bool_ = c == 't';
      expect_word(c == 't' ? "true" : "false");
    } else if (c == 'n') {
      expect_word("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind_ = JsonValue::Kind::kNumber;
      v.number_ = number();
    } else {
      fail(i_ >= s_.size() ? "unexpected end of file, expected a value" : "expected a value");
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  double number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == from) fail("expected a digit in a number");
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
    const std::string literal(s_.substr(start, i_ - start));
    return std::strtod(literal.c_str(), nullptr);
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("expected four hex digits after \\u");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      const char h = s_[i_];
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) fail("expected four hex digits after \\u");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  std::string string() {
    std::string out;
    ++i_;  // the opening quote
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("control character in a string (must be escaped)");
      if (c != '\\') {
        const size_t from = i_;
        while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\' &&
               static_cast<unsigned char>(s_[i_]) >= 0x20)
          ++i_;
        out.append(s_.substr(from, i_ - from));
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(i_, 2) != "\\u")
              fail("high surrogate escape not followed by a low surrogate escape");
            i_ += 2;
            const uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF)
              fail("high surrogate escape not followed by a low surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(cp, out);
          break;
        }
        default:
          i_ -= 2;
          fail(str("invalid escape '\\", e, "'"));
      }
    }
  }

  std::string_view s_;
  std::shared_ptr<const std::string> file_;
  size_t i_ = 0;
};

const char* JsonValue::kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "a boolean";
    case Kind::kNumber:
      return "a number";
    case Kind::kString:
      return "a string";
    case Kind::kArray:
      return "an array";
    case Kind::kObject:
      return "an object";
  }
  return "?";
}

std::string JsonValue::where() const {
  const std::string file = file_ ? *file_ : std::string("<json>");
  return path_.empty() ? str(file, ": ") : str(file, ": ", path_, ": ");
}

void JsonValue::wrong_kind(const char* expected) const {
  throw InputError(str(where(), "expected ", expected, ", got ", kind_name(kind_)));
}

bool JsonValue::as_bool() const {
  if (kind_ != Kind::kBool) wrong_kind("a boolean");
  return bool_;
}

const std::string& JsonValue::as_string() const {
  if (kind_ != Kind::kString) wrong_kind("a string");
  return string_;
}

int64_t JsonValue::as_int() const {
  if (kind_ != Kind::kNumber) wrong_kind("an integer");
  if (number_ != std::floor(number_) || std::fabs(number_) > 9007199254740992.0) {
    throw InputError(str(where(), "expected an integer, got ", number_));
  }
  return static_cast<int64_t>(number_);
}

const std::vector<JsonValue>& JsonValue::as_array() const {
  if (kind_ != Kind::kArray) wrong_kind("an array");
  return items_;
}

const std::vector<std::pair<std::string, JsonValue>>& JsonValue::as_object() const {
  if (kind_ != Kind::kObject) wrong_kind("an object");
  return members_;
}

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& [k, v] : as_object()) {
    if (k == key) return &v;
  }
  return nullptr;
}

const JsonValue& JsonValue::at(std::string_view key) const {
  const JsonValue* v = find(key);
  if (v == nullptr) {
    throw InputError(str(where(), "no member '", key, "'", path_.empty() ? " at the top level" : ""));
  }
  return *v;
}

JsonValue parse_json(std::string_view text, const std::string& file) {
  return JsonParser(text, file).document();
}

JsonValue read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(str(path, ": read error"));
  return parse_json(text, path);
}

void append_json_string(std::string_view text, std::string& out, int64_t* replaced) {
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8(text, i);
    if (c.code_point == kInvalidByte) {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      if (replaced != nullptr) ++*replaced;
    } else if (c.code_point == '"' || c.code_point == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c.code_point));
    } else if (c.code_point == '\n') {
      out.append("\\n");
    } else if (c.code_point == '\t') {
      out.append("\\t");
    } else if (c.code_point == '\r') {
      out.append("\\r");
    } else if (c.code_point < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", c.code_point);
      out.append(escape);
    } else {
      out.append(text.substr(i, c.length));
    }
    i += c.length;
  }
  out.push_back('"');
}

}  // namespace nsa::data_tools
