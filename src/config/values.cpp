// Scalar parsing and formatting for the config (the rules are in values.h).
#include "config/values.h"

#include <charconv>
#include <cstdio>
#include <limits>
#include <optional>

#include "core/error.h"

namespace nsa::config_detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

size_t count_digits(std::string_view text, size_t at) {
  size_t n = 0;
  while (at + n < text.size() && is_digit(text[at + n])) ++n;
  return n;
}

// A decimal literal split into its parts: [sign] int_digits [. frac_digits] [e exponent].
struct Literal {
  bool negative = false;
  std::string_view int_digits, frac_digits, exponent;  // exponent with its sign, without the 'e'
  bool has_point = false;
  bool has_exponent = false;
};

// The YAML 1.2 core-schema decimal grammar: [-+]? ( \.[0-9]+ | [0-9]+ (\.[0-9]*)? ) ([eE][-+]?[0-9]+)?
std::optional<Literal> split_literal(std::string_view text) {
  Literal lit;
  size_t at = 0;
  if (at < text.size() && (text[at] == '+' || text[at] == '-')) lit.negative = text[at++] == '-';
  size_t n = count_digits(text, at);
  lit.int_digits = text.substr(at, n);
  at += n;
  if (at < text.size() && text[at] == '.') {
    lit.has_point = true;
    n = count_digits(text, ++at);
    lit.frac_digits = text.substr(at, n);
    at += n;
  }
  if (lit.int_digits.empty() && lit.frac_digits.empty()) return std::nullopt;
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    lit.has_exponent = true;
    size_t start = ++at;
    if (at < text.size() && (text[at] == '+' || text[at] == '-')) ++at;
    n = count_digits(text, at);
    if (n == 0) return std::nullopt;
    at += n;
    lit.exponent = text.substr(start, at - start);
  }
  if (at != text.size()) return std::nullopt;
  return lit;
}

// The magnitude of an integer literal as decimal digits without leading zeros ("" for zero), or nullopt when
// the literal is not a whole number. `too_large` is set when it has more digits than any int64/uint64.
std::optional<std::string> integer_magnitude(std::string_view text, bool* negative, bool* too_large) {
  *too_large = false;
  std::optional<Literal> lit = split_literal(text);
  // A decimal point without an exponent ("3.0") is a float by the YAML grammar: not an integer.
  if (!lit || (lit->has_point && !lit->has_exponent)) return std::nullopt;
  *negative = lit->negative;
  std::string digits = std::string(lit->int_digits) + std::string(lit->frac_digits);
  digits.erase(0, digits.find_first_not_of('0'));
  if (digits.empty()) return digits;
  int64_t exponent = 0;
  if (lit->has_exponent) {
    std::string_view e = lit->exponent;
    if (e.front() == '+') e.remove_prefix(1);
    auto [end, ec] = std::from_chars(e.data(), e.data() + e.size(), exponent);
    if (ec != std::errc()) {  // more than 19 exponent digits: surely no exact int64
      if (e.front() == '-') return std::nullopt;
      *too_large = true;
      return digits;
    }
  }
  // value = digits · 10^shift
  int64_t frac = static_cast<int64_t>(lit->frac_digits.size());
  if (exponent > 1000 || exponent < -1000) {
    if (exponent < 0) return std::nullopt;
    *too_large = true;
    return digits;
  }
  int64_t shift = exponent - frac;
  if (shift >= 0) {
    if (static_cast<int64_t>(digits.size()) + shift > 20) {
      *too_large = true;
      return digits;
    }
    digits.append(static_cast<size_t>(shift), '0');
    return digits;
  }
  size_t dropped = static_cast<size_t>(-shift);
  if (dropped > digits.size() || digits.find_first_not_of('0', digits.size() - dropped) != std::string::npos)
    return std::nullopt;
  digits.resize(digits.size() - dropped);
  return digits;
}

std::optional<uint64_t> to_u64(const std::string& digits) {
  if (digits.empty()) return 0;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::string got(std::string_view text) { return str(", got '", text, "'"); }

}  // namespace

int64_t parse_int(std::string_view text) {
  bool negative = false, too_large = false;
  std::optional<std::string> digits = integer_magnitude(text, &negative, &too_large);
  if (!digits) throw ValueError{str("expected an integer", got(text))};
  std::optional<uint64_t> magnitude = too_large ? std::nullopt : to_u64(*digits);
  constexpr uint64_t max_positive = std::numeric_limits<int64_t>::max();
  if (!magnitude || *magnitude > max_positive + (negative ? 1 : 0))
    throw ValueError{str("expected an integer that fits 64 bits", got(text))};
  if (!negative) return static_cast<int64_t>(*magnitude);
  // -2^63 has no positive counterpart: negate in unsigned arithmetic.
  return static_cast<int64_t>(0 - *magnitude);
}

uint64_t parse_uint(std::string_view text) {
  bool negative = false, too_large = false;
  std::optional<std::string> digits = integer_magnitude(text, &negative, &too_large);
  if (!digits || (negative && !digits->empty()))
    throw ValueError{str("expected a non-negative integer", got(text))};
  std::optional<uint64_t> magnitude = too_large ? std::nullopt : to_u64(*digits);
  if (!magnitude) throw ValueError{str("expected an integer below 2^64", got(text))};
  return *magnitude;
}

double parse_number(std::string_view text) {
  if (!split_literal(text)) throw ValueError{str("expected a number", got(text))};
  std::string_view body = text.front() == '+' ? text.substr(1) : text;
  double value = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
  if (ec == std::errc::result_out_of_range)
    throw ValueError{str("expected a number within double range", got(text))};
  if (ec != std::errc() || end != body.data() + body.size())
    throw ValueError{str("expected a number", got(text))};
  return value;
}

bool parse_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  throw ValueError{str("expected true or false", got(text))};
}

std::string format_number(double value) {
  char buffer[64];
  // Shortest round-trip form: reads back to the same double, and is shorter than %.17g's
  // "0.10000000000000001".
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, end);
  if (text.find_first_of("ni") != std::string::npos) return text;  // inf, nan: refused when read back
  // A '.' in the mantissa keeps the text a float for YAML 1.1 readers too (PyYAML reads "1e-05" as text).
  size_t exponent = text.find('e');
  if (text.find('.') == std::string::npos)
    text.insert(exponent == std::string::npos ? text.size() : exponent, ".0");
  return text;
}

std::string quote_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02X", byte);
      out += escape;
    } else {
      out += c;  // UTF-8 bytes pass through
    }
  }
  return out + "\"";
}

}  // namespace nsa::config_detail
