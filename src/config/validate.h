// The checks of a whole Config: each key's own bound (from the schema) and the rules that relate keys.
// Internal to src/config.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace nsa::config_detail {

// Builds the one-line message of a problem with `key`, naming where the key's value came from.
using KeyMessage = std::function<std::string(std::string_view key, std::string_view what)>;

// Throws InputError(message(key, what)) at the first problem.
void validate(const Config& config, const KeyMessage& message);

}  // namespace nsa::config_detail
