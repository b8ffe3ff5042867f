#include "tokenize.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <thread>

#include "core/error.h"
#include "parallel_encode.h"
#include "progress_bar.h"
#include "shard_sink.h"
#include "tokenizer_files.h"

namespace nsa::data_tools {

namespace {

// Documents are read into batches of about this much text, then encoded on all threads.
constexpr size_t kBatchBytes = size_t{16} << 20;
// A document longer than this is cut into units (at safe cuts) so that threads share it.
constexpr size_t kUnitBytes = size_t{1} << 20;

enum class Split { kBalance, kTrain, kVal };

struct Document {
  std::string text;
  int64_t input_bytes = 0;
  Split split = Split::kBalance;
};

// Routes encoded documents to the two sinks and keeps the counts.
class Splitter {
 public:
  Splitter(const TokenizeOptions& options, int version, TokenizeSummary& summary)
      : options_(options),
        summary_(summary),
        train_(options.out_dir, "train", options.shard_tokens, version),
        val_(options.out_dir, "val", options.shard_tokens, version) {}

  // One document's tokens, EOT first.
  void add(const std::vector<uint32_t>& tokens, Split split) {
    const auto n = static_cast<int64_t>(tokens.size());
    const bool to_val =
        split == Split::kVal ||
        (split == Split::kBalance &&
         static_cast<double>(summary_.val_tokens + n) <=
             options_.val_fraction * static_cast<double>(summary_.train_tokens + summary_.val_tokens + n));
    (to_val ? val_ : train_).append(tokens);
    (to_val ? summary_.val_documents : summary_.train_documents) += 1;
    (to_val ? summary_.val_tokens : summary_.train_tokens) += n;
  }

  void finish() {
    summary_.train_shards = static_cast<int64_t>(train_.finish().size());
    summary_.val_shards = static_cast<int64_t>(val_.finish().size());
  }

 private:
  const TokenizeOptions& options_;
  TokenizeSummary& summary_;
  ShardSink train_, val_;
};

// Encodes batches of documents in parallel and hands them to the splitter in order.
class Pipeline {
 public:
  Pipeline(const TokenizeOptions& options, const BpeTokenizer& tokenizer, TokenizeSummary& summary,
           int64_t total_bytes)
      : tokenizer_(tokenizer),
        summary_(summary),
        splitter_(options, tokenizer.vocab_size() <= 65536 ? 1 : 2, summary),
        encoder_(tokenizer, summary.threads),
        bar_("tokenize", total_bytes, options.progress) {}

  void add(Document doc) {
    if (doc.text.empty()) {
      ++summary_.empty_documents;
      done_bytes_ += doc.input_bytes;
      return;
    }
    batch_bytes_ += doc.text.size();
    batch_.push_back(std::move(doc));
    if (batch_bytes_ >= kBatchBytes * static_cast<size_t>(std::max(1, encoder_.threads() / 2))) flush();
  }

  void finish() {
    flush();
    splitter_.finish();
    bar_.finish(summary_.input_bytes, done_tokens_);
    const int64_t lookups = encoder_.cache_hits() + encoder_.cache_misses();
    summary_.cache_lookups = lookups;
    summary_.cache_hit_rate = lookups > 0 ? static_cast<double>(encoder_.cache_hits()) / lookups : 0;
  }

 private:
  void flush() {
    if (batch_.empty()) return;
    units_.clear();
    unit_counts_.clear();
    for (const Document& doc : batch_) {
      const size_t before = units_.size();
      cut_into_units(doc.text, doc.input_bytes, kUnitBytes, tokenizer_.is_byte_fallback(), units_);
      unit_counts_.push_back(units_.size() - before);
      summary_.text_bytes += static_cast<int64_t>(doc.text.size());
    }
    const int64_t bytes_before = done_bytes_, tokens_before = done_tokens_;
    encoder_.encode(units_, results_, [&](int64_t bytes, int64_t tokens) {
      bar_.update(bytes_before + bytes, tokens_before + tokens);
    });
    size_t unit = 0;
    for (size_t d = 0; d < batch_.size(); ++d) {
      document_.assign(1, tokenizer_.eot());
      for (size_t k = 0; k < unit_counts_[d]; ++k, ++unit) {
        document_.insert(document_.end(), results_[unit].begin(), results_[unit].end());
        done_bytes_ += units_[unit].input_bytes;
      }
      done_tokens_ += static_cast<int64_t>(document_.size());
      splitter_.add(document_, batch_[d].split);
    }
    batch_.clear();
    batch_bytes_ = 0;
  }

  const BpeTokenizer& tokenizer_;
  TokenizeSummary& summary_;
  Splitter splitter_;
  ParallelEncoder encoder_;
  ProgressBar bar_;
  std::vector<Document> batch_;
  size_t batch_bytes_ = 0;
  std::vector<TextUnit> units_;
  std::vector<size_t> unit_counts_;
  std::vector<std::vector<uint32_t>> results_;
  std::vector<uint32_t> document_;
  int64_t done_bytes_ = 0, done_tokens_ = 0;
};

}  // namespace

void TokenizeOptions::validate() const {
  if (out_dir.empty()) throw InputError("--out: missing (the output directory)");
  if (inputs.empty()) throw InputError("tokenize: no input files given");
  if (jsonl_field.empty()) throw InputError("--field: expected a field name, got ''");
  if (shard_tokens < 1 || shard_tokens > INT32_MAX) {
    throw InputError(str("--shard-tokens: expected a count in [1, 2^31 - 1], got ", shard_tokens));
  }
  if (!(val_fraction >= 0 && val_fraction < 1)) {
    throw InputError(str("--val-fraction: expected a fraction in [0, 1), got ", val_fraction));
  }
  if (threads < 0 || threads > 1024)
    throw InputError(str("--threads: expected 0 (all) .. 1024, got ", threads));
  for (const std::string& path : inputs) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw InputError(str(path, ": cannot open: ", std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) throw InputError(str(path, ": not a regular file"));
  }
}

TokenizeSummary run_tokenize(const TokenizeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  options.validate();
  const BpeTokenizer tokenizer = load_tokenizer(options.tokenizer, options.eot);
  TokenizeSummary summary;
  summary.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.tokenizer = tokenizer.description();
  summary.vocab_size = tokenizer.vocab_size();
  summary.eot = tokenizer.eot();
  summary.shard_version = tokenizer.vocab_size() <= 65536 ? 1 : 2;
  summary.threads = options.threads > 0 ? options.threads
                                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t total_bytes = 0;
  for (const std::string& path : options.inputs) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) total_bytes += st.st_size;
  }
  Pipeline pipeline(options, tokenizer, summary, total_bytes);

  const bool single_text =
      options.inputs.size() == 1 && input_format_of(options.inputs[0], options.format) == InputFormat::kText;
  read_documents(options.inputs, options.format, options.jsonl_field, [&](std::string&& text, int64_t bytes) {
    summary.input_bytes += bytes;
    if (single_text && options.val_fraction > 0) {
      // One document only: its tail is the val document, cut just after a newline when possible.
      size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1 - options.val_fraction));
      const size_t newline = text.find('\n', cut);
      if (newline != std::string::npos && newline + 1 < text.size()) cut = newline + 1;
      const auto train_bytes = static_cast<int64_t>(cut);
      pipeline.add({text.substr(0, cut), train_bytes, Split::kTrain});
      pipeline.add({text.substr(cut), bytes - train_bytes, Split::kVal});
      summary.split_single_document = true;
    } else {
      pipeline.add({std::move(text), bytes});
    }
  });
  pipeline.finish();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace nsa::data_tools
