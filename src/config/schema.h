// The config schema: one row per dotted YAML key, in the order to_yaml writes them. A row's key is the path
// of its field in `Config` ("model.d_model" is config.model.d_model): the table is built from the field
// paths themselves, so a key and its field cannot drift apart. Internal to src/config.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace nsa::config_detail {

// Where a row's value lives in a Config; the alternative also fixes the YAML type (see value_type).
using FieldRef = std::variant<int64_t*, uint64_t*, double*, bool*, std::string*, std::vector<std::string>*>;

enum class ValueType { integer, unsigned_integer, number, boolean, string, enumeration, string_list };

// A check on one value by itself (the checks that relate several keys live in validate.cpp).
enum class Bound {
  none,
  positive,          // > 0
  non_negative,      // >= 0
  unit_closed_open,  // [0, 1)
  unit_closed,       // [0, 1]
  unit_open_closed,  // (0, 1]
  non_empty,         // a string that is not ""
};

struct KeySpec {
  std::string_view key;
  FieldRef (*field)(Config&);
  std::string_view doc;
  Bound bound = Bound::none;
  std::vector<std::string_view> allowed = {};  // enum values, or the values a list's items may take

  ValueType type() const;
  // "an integer", "a number", "one of full, nsa", ...: what a value of this key must be.
  std::string expected() const;
};

const std::vector<KeySpec>& schema();
// nullptr when `key` is not a leaf key.
const KeySpec* find_key(std::string_view key);
// True for "model", "attention", "attention.nsa", ...: proper prefixes of keys.
bool is_section(std::string_view name);
// The first key inside `section`, for messages ("model" → "model.vocab_size").
std::string_view first_key_in(std::string_view section);
// The valid key or section most likely meant by the unknown `name`.
std::string nearest_key(std::string_view name);

std::string_view bound_text(Bound bound, ValueType type);

}  // namespace nsa::config_detail
