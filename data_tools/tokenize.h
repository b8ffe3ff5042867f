// `nsa-data tokenize`: documents (text files, JSON lines, tagged Brown corpus files) to token shards.
//
// Tokenizer: --tokenizer (tokenizer_files.h): the byte-level fallback by default (byte b is token b,
// EOT 256, vocab 257), or a byte-level BPE from GPT-2's files or a tokenizer.json. Its end-of-text token
// precedes every document (llm.c's convention). Shards hold uint16 tokens (version 1) when the vocabulary
// has at most 65536 ids, uint32 (version 2) otherwise.
//
// Inputs (--format auto: by name): a .jsonl file holds one document per line (the string field named by
// --field); a tagged Brown corpus file (--format brown, brown_text.h) is one document; any other file is
// one document (its bytes as they are). Documents are encoded on --threads threads; the shards are the
// same for any thread count.
//
// Validation split: documents go whole to val or train; a document goes to val when the val split, with
// it, holds at most --val-fraction of all tokens so far (a running balance: spread over the inputs, the
// same for the same inputs). A single text input is one document, so instead its last --val-fraction of
// bytes (cut after a newline when there is one) becomes the val document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "document_reader.h"

namespace nsa::data_tools {

inline constexpr uint32_t kByteEot = 256;
inline constexpr int64_t kByteVocab = 257;

struct TokenizeOptions {
  std::string out_dir;
  std::vector<std::string> inputs;
  std::string tokenizer = "bytes";  // see tokenizer_files.h
  std::string eot;                  // the end-of-text token's text; empty: the tokenizer's usual one
  InputFormat format = InputFormat::kAuto;
  std::string jsonl_field = "text";
  int64_t shard_tokens = 100'000'000;
  double val_fraction = 0.01;
  int threads = 0;       // 0: one per hardware thread
  bool progress = true;  // a progress bar on stderr

  // Throws InputError naming the option, or the first input that cannot be read.
  void validate() const;
};

struct TokenizeSummary {
  std::string tokenizer;  // its description
  int64_t vocab_size = 0;
  uint32_t eot = 0;
  int shard_version = 1;
  int threads = 1;
  int64_t input_bytes = 0;
  int64_t text_bytes = 0;       // of the documents (what the tokenizer read)
  int64_t empty_documents = 0;  // skipped
  int64_t train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;
  int64_t train_shards = 0, val_shards = 0;
  bool split_single_document = false;
  double seconds = 0;         // the whole run
  double load_seconds = 0;    // of it, loading the tokenizer
  int64_t cache_lookups = 0;  // of the piece cache (BPE tokenizers; 0 for the byte-level fallback)
  double cache_hit_rate = 0;
};

// Writes DIR/train_*.bin and DIR/val_*.bin. Throws InputError ("data.jsonl:17: malformed JSON ...").
TokenizeSummary run_tokenize(const TokenizeOptions& options);

}  // namespace nsa::data_tools
