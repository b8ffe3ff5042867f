#include "brown_text.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"

namespace nsa::data_tools {

namespace fs = std::filesystem;

std::string brown_plain_text(std::string_view tagged, const std::string& file) {
  std::string out;
  out.reserve(tagged.size() * 3 / 4);
  size_t line_start = 0;
  for (int64_t number = 1; line_start < tagged.size(); ++number) {
    size_t line_end = tagged.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = tagged.size();
    const std::string_view line = tagged.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    bool first_word = true;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i == line.size()) break;
      size_t end = i;
      while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r') ++end;
      const std::string_view word = line.substr(i, end - i);
      const size_t slash = word.rfind('/');
      if (slash == std::string_view::npos || slash == 0) {
        throw InputError(
            str(file, ":", number, ": word '", word, "' has no /tag (not a tagged Brown corpus file?)"));
      }
      if (first_word && !out.empty()) out.push_back('\n');
      if (!first_word) out.push_back(' ');
      out.append(word.substr(0, slash));
      first_word = false;
      i = end;
    }
  }
  return out;
}

std::vector<std::string> brown_corpus_files(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' && std::isdigit(name[2]) &&
        std::isdigit(name[3]) && entry.is_regular_file()) {
      files.push_back(entry.path().string());
    }
  }
  if (ec) throw InputError(str(dir, ": cannot list the Brown corpus directory: ", ec.message()));
  if (files.empty()) throw InputError(str(dir, ": no Brown corpus files (ca01 .. cr09) in this directory"));
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace nsa::data_tools
