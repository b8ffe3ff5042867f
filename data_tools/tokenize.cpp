#include "tokenize.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "core/error.h"
#include "json_field.h"
#include "shard_sink.h"

namespace nsa::data_tools {

namespace {

constexpr int64_t kProgressBytes = int64_t{256} << 20;

bool is_jsonl(const std::string& path) {
  return path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
}

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(str(path, ": read error"));
  return text;
}

// Routes documents to the two sinks and keeps the counts.
class Splitter {
 public:
  Splitter(const TokenizeOptions& options, TokenizeSummary& summary)
      : options_(options),
        summary_(summary),
        train_(options.out_dir, "train", options.shard_tokens, 1),
        val_(options.out_dir, "val", options.shard_tokens, 1) {}

  // Adds one document (its bytes) to the split chosen by the running balance.
  void add(std::string_view text) {
    if (text.empty()) {
      ++summary_.empty_documents;
      return;
    }
    const auto n = static_cast<int64_t>(text.size()) + 1;
    const bool to_val =
        static_cast<double>(summary_.val_tokens + n) <=
        options_.val_fraction * static_cast<double>(summary_.train_tokens + summary_.val_tokens + n);
    add_to(text, to_val);
  }

  // Adds one document to the given split.
  void add_to(std::string_view text, bool to_val) {
    if (text.empty()) {
      ++summary_.empty_documents;
      return;
    }
    tokens_.resize(text.size() + 1);
    tokens_[0] = kByteEot;
    for (size_t i = 0; i < text.size(); ++i) tokens_[i + 1] = static_cast<unsigned char>(text[i]);
    (to_val ? val_ : train_).append(tokens_);
    (to_val ? summary_.val_documents : summary_.train_documents) += 1;
    (to_val ? summary_.val_tokens : summary_.train_tokens) += static_cast<int64_t>(tokens_.size());
  }

  void finish() {
    summary_.train_shards = static_cast<int64_t>(train_.finish().size());
    summary_.val_shards = static_cast<int64_t>(val_.finish().size());
  }

 private:
  const TokenizeOptions& options_;
  TokenizeSummary& summary_;
  ShardSink train_, val_;
  std::vector<uint32_t> tokens_;
};

}  // namespace

void TokenizeOptions::validate() const {
  if (out_dir.empty()) throw InputError("--out: missing (the output directory)");
  if (inputs.empty()) throw InputError("tokenize: no input files given");
  if (jsonl_field.empty()) throw InputError("--jsonl-field: expected a field name, got ''");
  if (shard_tokens < 1 || shard_tokens > INT32_MAX) {
    throw InputError(str("--shard-tokens: expected a count in [1, 2^31 - 1], got ", shard_tokens));
  }
  if (!(val_fraction >= 0 && val_fraction < 1)) {
    throw InputError(str("--val-fraction: expected a fraction in [0, 1), got ", val_fraction));
  }
  for (const std::string& path : inputs) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) throw InputError(str(path, ": not a regular file"));
  }
}

TokenizeSummary run_tokenize(const TokenizeOptions& options) {
  options.validate();
  TokenizeSummary summary;
  Splitter splitter(options, summary);
  int64_t next_report = kProgressBytes;
  auto progress = [&] {
    if (!options.progress || summary.input_bytes < next_report) return;
    next_report = summary.input_bytes + kProgressBytes;
    std::fprintf(stderr, "nsa-data tokenize: %.2f GiB read, %lld documents\n",
                 static_cast<double>(summary.input_bytes) / (1 << 30),
                 static_cast<long long>(summary.train_documents + summary.val_documents));
  };

  const bool single_text = options.inputs.size() == 1 && !is_jsonl(options.inputs[0]);
  for (const std::string& path : options.inputs) {
    if (!is_jsonl(path)) {
      const std::string text = read_file(path);
      summary.input_bytes += static_cast<int64_t>(text.size());
      if (single_text && options.val_fraction > 0) {
        // One document only: its tail is the val document, cut just after a newline when possible.
        size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1 - options.val_fraction));
        const size_t newline = text.find('\n', cut);
        if (newline != std::string::npos && newline + 1 < text.size()) cut = newline + 1;
        const std::string_view all(text);
        splitter.add_to(all.substr(0, cut), false);
        splitter.add_to(all.substr(cut), true);
        summary.split_single_document = true;
      } else {
        splitter.add(text);
      }
      progress();
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      summary.input_bytes += static_cast<int64_t>(line.size()) + 1;
      if (is_blank(line)) continue;
      splitter.add(json_string_field(line, options.jsonl_field, str(path, ":", number)));
      progress();
    }
    if (in.bad()) throw InputError(str(path, ": read error"));
  }
  splitter.finish();
  return summary;
}

}  // namespace nsa::data_tools
