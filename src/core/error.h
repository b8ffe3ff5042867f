// Error: the one exception type of nsa-train. Messages are single lines that name the op or file, what was
// expected and what came, e.g. "[rms_norm] expected weight of shape [512], got [256]". Input checks use
// NSA_CHECK and stay on in Release builds; `assert` is reserved for internal invariants.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace nsa {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input from the user's side (a config, a shard, a checkpoint, a command line): the message is the
// whole one-line report ("configs/x.yaml: model.n_heads: expected ..."), shown without a source location.
class InputError : public Error {
 public:
  using Error::Error;
};

// Concatenates anything streamable into one string.
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

// Throws nsa::Error with the message and the source location (kept short: path from the repo root).
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

}  // namespace nsa

#define NSA_CHECK(cond, ...)                                                      \
  do {                                                                            \
    if (!(cond)) ::nsa::throw_error(__FILE__, __LINE__, ::nsa::str(__VA_ARGS__)); \
  } while (0)

#define NSA_FAIL(...) ::nsa::throw_error(__FILE__, __LINE__, ::nsa::str(__VA_ARGS__))
