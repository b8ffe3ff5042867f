// Loading a BpeTokenizer from files. A tokenizer is named by one string (the --tokenizer option):
//
//   bytes                    the byte-level fallback (vocab 257, EOT 256); also the default
//   DIR                      DIR/tokenizer.json if present, else DIR/encoder.json + DIR/vocab.bpe
//   FILE.json                a Hugging Face tokenizer.json (or an encoder.json with vocab.bpe beside it)
//
// GPT-2 files: encoder.json maps byte-level token strings (byte_level.h) to ids; vocab.bpe holds a
// "#version" line, then one merge "left right" per line in rank order. The split pattern is GPT-2's.
//
// tokenizer.json (Hugging Face tokenizers): model.type "BPE" with model.vocab and model.merges ("a b"
// strings or ["a", "b"] pairs), model.ignore_merges, added_tokens; no normalizer; a pre_tokenizer that is
// ByteLevel with use_regex (GPT-2's pattern), or a Sequence of a Split with a known Regex pattern
// (behavior Isolated) and a ByteLevel without regex. Anything else is refused with a message that says
// what was found and what is supported.
//
// The end-of-text token written before each document: `eot` when given (a token's text), else the first
// of <|endoftext|>, <|end_of_text|>, <|begin_of_text|>, </s>, <s> that the vocabulary has.
#pragma once

#include <string>

#include "bpe_tokenizer.h"
#include "io/json.h"

namespace nsa::data_tools {

// How tokenizer files are read: strings' bytes as they are, the first of repeated keys found (the others
// kept), nesting up to 256 levels.
inline constexpr json::ParseOptions kTokenizerJsonOptions{
    .first_key_wins = true, .check_utf8 = false, .max_depth = 256};

BpeTokenizer load_tokenizer(const std::string& spec, const std::string& eot = "");

BpeTokenizer load_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe,
                             const std::string& eot = "");
BpeTokenizer load_tokenizer_json(const std::string& path, const std::string& eot = "");

}  // namespace nsa::data_tools
