#include "args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace nsa::data_tools {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

Args::Args(const std::string& command, const std::vector<std::string>& args,
           const std::vector<OptionSpec>& spec, const std::string& tool) {
  auto find = [&](const std::string& name) -> const OptionSpec* {
    for (const OptionSpec& s : spec) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      if (!options_done && arg.size() > 1 && arg[0] == '-') {
        throw InputError(str(command, ": unknown option '", arg, "' (options are written --name)"));
      }
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const OptionSpec* option = find(name);
    if (option == nullptr) {
      std::string suggestion;
      size_t best = 3;  // suggest only close names
      for (const OptionSpec& s : spec) {
        const size_t d = edit_distance(name, s.name);
        if (d < best) {
          best = d;
          suggestion = s.name;
        }
      }
      throw InputError(str(command, ": unknown option '--", name, "'",
                           suggestion.empty() ? "" : str(" (did you mean '--", suggestion, "'?)"),
                           "; see ", tool, " ", command, " --help"));
    }
    if (values_.count(name) > 0) throw InputError(str(command, ": option '--", name, "' given twice"));
    if (!option->takes_value) {
      if (eq != std::string::npos) throw InputError(str(command, ": option '--", name, "' takes no value"));
      values_[name] = "";
    } else if (eq != std::string::npos) {
      values_[name] = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size() || args[i + 1].compare(0, 2, "--") == 0) {
        throw InputError(str(command, ": option '--", name, "' needs a value"));
      }
      values_[name] = args[++i];
    }
  }
}

std::string Args::text(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Args::count(const std::string& name, int64_t fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  int64_t scale = 1;
  if (digits + 1 == v.size()) {
    const char suffix = v.back();
    scale = suffix == 'k' || suffix == 'K' ? 1000
            : suffix == 'M'                ? 1000'000
            : suffix == 'G'                ? 1000'000'000
                                           : 0;
  }
  if (digits == 0 || digits > 18 || scale == 0 || (digits != v.size() && digits + 1 != v.size())) {
    throw InputError(
        str("--", name, ": expected a non-negative integer (like 4000000 or 4M), got '", v, "'"));
  }
  const int64_t value = std::strtoll(v.substr(0, digits).c_str(), nullptr, 10);
  if (value > INT64_MAX / scale) throw InputError(str("--", name, ": value '", v, "' is too large"));
  return value * scale;
}

double Args::number(const std::string& name, double fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || errno != 0 || !std::isfinite(value)) {
    throw InputError(str("--", name, ": expected a number, got '", v, "'"));
  }
  return value;
}

}  // namespace nsa::data_tools
