#include "core/error.h"

#include <cstring>

namespace nsa {

void throw_error(const char* file, int line, const std::string& message) {
  // Keep "src/..." or "kernels/..." of the path: enough to find the line, short enough for one line.
  const char* shown = file;
  for (const char* root : {"/src/", "/kernels/", "/tests/", "/data_tools/"}) {
    if (const char* p = std::strstr(file, root)) {
      shown = p + 1;
      break;
    }
  }
  throw Error(str(message, " (", shown, ":", line, ")"));
}

}  // namespace nsa
