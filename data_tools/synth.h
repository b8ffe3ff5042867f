// The synthetic corpus of `nsa-data synth`: a small probabilistic language, plus retrieval documents
// (passkey, associative recall) whose answers a later evaluation can score. docs/data.md gives the exact
// token layout. Everything is drawn from integer arithmetic on our own generator (rng.h), so a seed gives
// the same bytes on every machine.
//
// Token ids: 0 EOT (precedes every document), 1 KEY, 2 VALUE, 3 QUERY, 4 PASSKEY, 5-7 reserved,
// 8-17 the digits 0-9, 18 PERIOD, 19 COMMA, 20 PLURAL (noun suffix), 21 SINGULAR (verb agreement suffix),
// 22 .. vocab-1 word pieces.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "rng.h"

namespace nsa::data_tools {

namespace tok {
inline constexpr uint32_t kEot = 0;
inline constexpr uint32_t kKey = 1;
inline constexpr uint32_t kValue = 2;
inline constexpr uint32_t kQuery = 3;
inline constexpr uint32_t kPasskey = 4;
inline constexpr uint32_t kDigit0 = 8;  // digit d is kDigit0 + d
inline constexpr uint32_t kPeriod = 18;
inline constexpr uint32_t kComma = 19;
inline constexpr uint32_t kPlural = 20;
inline constexpr uint32_t kSingular = 21;
inline constexpr uint32_t kFirstPiece = 22;
}  // namespace tok

inline constexpr int64_t kSynthMinVocab = 128;
inline constexpr int64_t kSynthMaxVocab = 65536;  // uint16 shards

struct SynthOptions {
  int64_t train_tokens = 4'000'000;
  int64_t val_tokens = 200'000;
  int64_t shard_tokens = 1'000'000;
  int64_t vocab_size = 512;
  uint64_t seed = 1;
  double passkey_fraction = 0.06;  // of documents
  double recall_fraction = 0.06;   // of documents
  int64_t retrieval_min_tokens = 256;
  int64_t retrieval_max_tokens = 4096;
  int64_t passkey_digits = 5;
  int64_t recall_key_tokens = 2;
  int64_t recall_value_tokens = 1;
  int64_t recall_max_pairs = 16;
  int64_t recall_max_queries = 4;

  // Throws InputError naming the option ("--vocab: ...") when a value is out of range.
  void validate() const;
};

enum class DocKind { kGrammar = 0, kPasskey = 1, kRecall = 2 };
inline constexpr int kDocKinds = 3;
const char* doc_kind_name(DocKind kind);

// tokens[begin, begin + length) is an answer: predictable only by retrieving it from earlier in the document.
struct AnswerSpan {
  int64_t begin = 0;
  int64_t length = 0;
};

// One document without its leading EOT.
struct SynthDocument {
  DocKind kind = DocKind::kGrammar;
  std::vector<uint32_t> tokens;
  std::vector<AnswerSpan> answers;  // empty for grammar documents
};

// The language: a lexicon of words (sequences of pieces) in categories, with Zipfian frequencies, topics,
// and verb-object preferences, all drawn from the seed. Immutable once built.
class SynthLanguage {
 public:
  SynthLanguage(int64_t vocab_size, uint64_t seed);

  int64_t vocab_size() const { return vocab_size_; }

  SynthDocument grammar_document(Rng& rng) const;
  // Filler of about `length` tokens (whole sentences) with the passkey inserted at a random sentence
  // boundary, then QUERY PASSKEY and the digits again (the answer).
  SynthDocument passkey_document(Rng& rng, int64_t length, int64_t digits) const;
  // KEY k.. VALUE v.. records inserted at random sentence boundaries of about `length` tokens of filler,
  // then queries QUERY k.. VALUE v.. over distinct records (the v.. are the answers).
  SynthDocument recall_document(Rng& rng, int64_t length, const SynthOptions& options) const;

 private:
  struct Word {
    std::vector<uint32_t> pieces;
  };
  // Words of one category with Zipf weights 1/(rank + 2.7), as integer cumulative weights.
  struct Category {
    std::vector<Word> words;
    std::vector<uint64_t> cumulative;
    size_t pick(Rng& rng) const;
  };
  struct Topic {
    std::vector<uint32_t> nouns;  // indices into nouns_
  };

  void sentence(Rng& rng, const Topic& topic, std::vector<uint32_t>& out) const;
  void clause(Rng& rng, const Topic& topic, std::vector<uint32_t>& out) const;
  // Appends a noun phrase; returns whether its head noun is plural.
  bool noun_phrase(Rng& rng, const Topic& topic, int depth, std::vector<uint32_t>& out,
                   const std::vector<uint32_t>* preferred_nouns) const;
  void append_word(const Word& word, std::vector<uint32_t>& out) const;
  const Topic& pick_topic(Rng& rng) const { return topics_[rng.below(topics_.size())]; }
  // Whole sentences until at least `length` tokens; returns each sentence's start (a boundary).
  std::vector<int64_t> filler(Rng& rng, const Topic& topic, int64_t length, std::vector<uint32_t>& out) const;
  uint32_t random_piece(Rng& rng) const;

  int64_t vocab_size_;
  std::vector<std::array<uint32_t, 2>> determiners_;  // singular, plural form
  std::vector<uint32_t> prepositions_;
  std::vector<uint32_t> conjunctions_;
  Category nouns_, verbs_, adjectives_, adverbs_;
  std::vector<bool> transitive_;                     // per verb
  std::vector<std::vector<uint32_t>> verb_objects_;  // per verb: preferred object nouns
  std::vector<Topic> topics_;
};

struct SplitSummary {
  int64_t tokens = 0;
  int64_t shards = 0;
  std::array<int64_t, kDocKinds> documents{};  // documents begun (the last one may be cut by the split's end)
};

struct SynthSummary {
  SplitSummary train, val;
  double unigram_entropy = 0;  // nats, of the train split
  double bigram_entropy = -1;  // nats, H(next | previous) of the train split; -1 when not computed
};

// Calls `consume(document_tokens)` with the token stream of one split ("train" or "val"), one document
// at a time, each with its leading EOT: EOT, document, EOT, document, ... cut at exactly `tokens` tokens
// in all. Counts the documents into `summary` when given.
void generate_split(const SynthLanguage& language, const SynthOptions& options, const std::string& split,
                    int64_t tokens, SplitSummary* summary,
                    const std::function<void(std::span<const uint32_t>)>& consume);
// The same collected into one vector.
std::vector<uint32_t> synth_split(const SynthLanguage& language, const SynthOptions& options,
                                  const std::string& split, int64_t tokens, SplitSummary* summary = nullptr);

// Writes DIR/train_*.bin and DIR/val_*.bin (uint16 shards) and returns the summary. Throws InputError.
SynthSummary run_synth(const SynthOptions& options, const std::string& out_dir);

// Token counts of a stream, for entropies in nats: of the unigram distribution, and of the next token
// given the previous one (a plug-in estimate; kept only for vocabularies up to kMaxBigramVocab).
class TokenStats {
 public:
  static constexpr int64_t kMaxBigramVocab = 2048;
  explicit TokenStats(int64_t vocab_size);
  void add(std::span<const uint32_t> tokens);
  double unigram_entropy() const;
  double bigram_entropy() const;  // -1 when the vocabulary is too large to count pairs

 private:
  int64_t vocab_size_;
  std::vector<int64_t> unigram_;
  std::vector<int64_t> bigram_;  // [previous * vocab + next]
  int64_t previous_ = -1;
};

}  // namespace nsa::data_tools
