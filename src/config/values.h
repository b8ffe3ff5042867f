// One YAML scalar read as the schema's types define them, and values written back as YAML text that reads
// back to the same value. Integers: decimal digits, or scientific notation that is an exact whole number
// (1e4, 2.5e3); "3.0" is not an integer. Numbers: YAML 1.2 decimal floats (inf and nan are refused);
// integers are numbers too. Booleans: true/false (also True, TRUE, False, FALSE). Internal to src/config.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nsa::config_detail {

// A value that does not fit its key; `what` completes "<where>: <key>: " ("expected an integer, got 'x'").
struct ValueError {
  std::string what;
};

// Each throws ValueError naming what was expected and what came.
int64_t parse_int(std::string_view text);
uint64_t parse_uint(std::string_view text);
double parse_number(std::string_view text);
bool parse_bool(std::string_view text);

// The shortest text that reads back to exactly `value`, always with a '.' in the mantissa so that every
// YAML reader takes it for a float ("10000.0", "0.003", "1.0e-08").
std::string format_number(double value);
// A double-quoted YAML string.
std::string quote_string(std::string_view text);

}  // namespace nsa::config_detail
