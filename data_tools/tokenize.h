// `nsa-data tokenize`: text or JSON-lines documents to byte-level uint16 shards.
//
// Tokens: a byte b is token b (0..255); EOT = 256 precedes every document (llm.c's convention), so the
// vocabulary has 257 tokens. A .jsonl input holds one document per line (the string field named by
// --jsonl-field); any other input is one document (its whole content).
//
// Validation split: documents go whole to val or train; a document goes to val when the val split, with
// it, holds at most --val-fraction of all tokens so far (a running balance: spread over the inputs, the
// same for the same inputs). A single text input is one document, so instead its last --val-fraction
// (cut after a newline when there is one) becomes the val document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nsa::data_tools {

inline constexpr uint32_t kByteEot = 256;
inline constexpr int64_t kByteVocab = 257;

struct TokenizeOptions {
  std::string out_dir;
  std::vector<std::string> inputs;
  std::string jsonl_field = "text";
  int64_t shard_tokens = 100'000'000;
  double val_fraction = 0.01;
  bool progress = true;  // a line on stderr every 256 MiB of input

  // Throws InputError naming the option, or the first input that cannot be read.
  void validate() const;
};

struct TokenizeSummary {
  int64_t input_bytes = 0;
  int64_t empty_documents = 0;  // skipped
  int64_t train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;
  int64_t train_shards = 0, val_shards = 0;
  bool split_single_document = false;
};

// Writes DIR/train_*.bin and DIR/val_*.bin. Throws InputError ("data.jsonl:17: malformed JSON ...").
TokenizeSummary run_tokenize(const TokenizeOptions& options);

}  // namespace nsa::data_tools
