#include "io/hdf5_handle.h"

#include <mutex>

#include "core/error.h"

namespace nsa::h5 {

namespace {

// Longest reason kept from HDF5's stack (some descriptions carry a whole property dump).
constexpr size_t kMaxReasonChars = 240;

herr_t keep_innermost(unsigned /*depth*/, const H5E_error2_t* entry, void* out) {
  // Walking downward, the last entry visited is the innermost: the most specific reason.
  if (entry->desc != nullptr) *static_cast<std::string*>(out) = entry->desc;
  return 0;
}

// Newlines and runs of blanks become one space, so the message stays on one line.
std::string one_line(const std::string& text) {
  std::string out;
  bool blank = false;
  for (char c : text) {
    const bool is_blank = c == ' ' || c == '\n' || c == '\r' || c == '\t';
    if (is_blank) {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += c;
  }
  if (out.size() > kMaxReasonChars) out = out.substr(0, kMaxReasonChars) + "...";
  return out;
}

}  // namespace

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string take_error_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &reason);
  H5Eclear2(H5E_DEFAULT);
  return one_line(reason);
}

std::string where(const std::string& file, const std::string& object) {
  return object.empty() ? file + ": " : file + ": " + object + ": ";
}

void fail(const std::string& file, const std::string& object, const std::string& what) {
  std::string message = where(file, object) + what;
  const std::string reason = take_error_reason();
  if (!reason.empty()) message += " (" + reason + ")";
  throw InputError(message);
}

}  // namespace nsa::h5
