// Command-line options of one nsa-data subcommand: "--name value", "--name=value", flags, positional
// arguments ("--" ends the options). Every mistake is an InputError naming the option (with the nearest
// valid name for a typo).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nsa::data_tools {

struct OptionSpec {
  std::string name;  // without the leading "--"
  bool takes_value = true;
};

class Args {
 public:
  // `command` is the subcommand's name ("synth"), used in messages; `tool` the executable's ("nsa-ckpt").
  Args(const std::string& command, const std::vector<std::string>& args, const std::vector<OptionSpec>& spec,
       const std::string& tool = "nsa-data");

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string text(const std::string& name, const std::string& fallback) const;
  // A non-negative integer (digits, optionally with a k/M/G suffix: 4M = 4000000).
  int64_t count(const std::string& name, int64_t fallback) const;
  double number(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace nsa::data_tools
