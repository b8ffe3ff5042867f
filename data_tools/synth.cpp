#include "synth.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "shard_sink.h"

namespace nsa::data_tools {

namespace {

// Lexicon shape. Function words are single pieces; content words are a stem piece of their category
// followed by 0-2 pieces of a shared suffix region.
constexpr int kDeterminerPairs = 6;
constexpr int kPrepositions = 8;
constexpr int kConjunctions = 4;
constexpr int kWordsPerStem = 3;
constexpr int kTopics = 16;
constexpr int kNounsPerTopic = 24;
constexpr int kObjectsPerVerb = 6;
constexpr double kZipfShift = 2.7;  // Zipf–Mandelbrot weights 1 / (rank + 2.7)

// Stream numbers of the generator: one for the lexicon, one per split.
constexpr uint64_t kLexiconStream = 0;
uint64_t split_stream(const std::string& split) { return split == "train" ? 1 : split == "val" ? 2 : 3; }

int64_t piece_count(int64_t vocab_size) { return vocab_size - tok::kFirstPiece; }

// A length between lo and hi, roughly log-uniform: an octave [lo·2^k, lo·2^(k+1)) chosen uniformly, then a
// uniform length inside it (integer arithmetic only, so identical everywhere).
int64_t sample_length(Rng& rng, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  int64_t octaves = 0;
  for (int64_t start = lo; start < hi; start *= 2) ++octaves;
  int64_t start = lo;
  for (uint64_t k = rng.below(static_cast<uint64_t>(octaves)); k > 0; --k) start *= 2;
  return rng.between(start, std::min(hi, 2 * start - 1));
}

void check_option(bool ok, const char* option, const std::string& expected, const std::string& got) {
  if (!ok) throw InputError(str(option, ": expected ", expected, ", got ", got));
}

}  // namespace

const char* doc_kind_name(DocKind kind) {
  switch (kind) {
    case DocKind::kGrammar:
      return "grammar";
    case DocKind::kPasskey:
      return "passkey";
    case DocKind::kRecall:
      return "recall";
  }
  return "?";
}

void SynthOptions::validate() const {
  check_option(train_tokens >= 1, "--train-tokens", "a count >= 1", str(train_tokens));
  check_option(val_tokens >= 0, "--val-tokens", "a count >= 0", str(val_tokens));
  check_option(shard_tokens >= 1 && shard_tokens <= INT32_MAX, "--shard-tokens", "a count in [1, 2^31 - 1]",
               str(shard_tokens));
  check_option(vocab_size >= kSynthMinVocab && vocab_size <= kSynthMaxVocab, "--vocab",
               str("a size in [", kSynthMinVocab, ", ", kSynthMaxVocab, "]"), str(vocab_size));
  check_option(passkey_fraction >= 0 && passkey_fraction <= 1, "--passkey-fraction", "a fraction in [0, 1]",
               str(passkey_fraction));
  check_option(recall_fraction >= 0 && recall_fraction <= 1, "--recall-fraction", "a fraction in [0, 1]",
               str(recall_fraction));
  check_option(passkey_fraction + recall_fraction <= 1, "--recall-fraction",
               "passkey and recall fractions summing to at most 1", str(passkey_fraction + recall_fraction));
  check_option(passkey_digits >= 1 && passkey_digits <= 64, "--passkey-digits", "a count in [1, 64]",
               str(passkey_digits));
  check_option(recall_key_tokens >= 1 && recall_key_tokens <= 8, "--recall-key-tokens", "a count in [1, 8]",
               str(recall_key_tokens));
  check_option(recall_value_tokens >= 1 && recall_value_tokens <= 8, "--recall-value-tokens",
               "a count in [1, 8]", str(recall_value_tokens));
  // Keys are distinct in a document: there must be enough of them.
  double distinct_keys = 1;
  for (int64_t i = 0; i < recall_key_tokens; ++i)
    distinct_keys *= static_cast<double>(piece_count(vocab_size));
  const int64_t max_pairs = static_cast<int64_t>(std::min(1024.0, distinct_keys / 2));
  check_option(recall_max_pairs >= 1 && recall_max_pairs <= max_pairs, "--recall-max-pairs",
               str("a count in [1, ", max_pairs, "]"), str(recall_max_pairs));
  check_option(recall_max_queries >= 1 && recall_max_queries <= recall_max_pairs, "--recall-max-queries",
               "a count in [1, --recall-max-pairs]", str(recall_max_queries));
  // The shortest retrieval document must hold its records and queries.
  const int64_t record = 2 + recall_key_tokens + recall_value_tokens;
  const int64_t fixed = std::max(2 * passkey_digits + 3, record * (recall_max_pairs + recall_max_queries));
  check_option(retrieval_min_tokens >= 16, "--retrieval-min-tokens", "a length >= 16",
               str(retrieval_min_tokens));
  check_option(retrieval_max_tokens >= retrieval_min_tokens && retrieval_max_tokens <= (int64_t{1} << 24),
               "--retrieval-max-tokens", "a length in [--retrieval-min-tokens, 2^24]",
               str(retrieval_max_tokens));
  check_option(retrieval_max_tokens >= fixed, "--retrieval-max-tokens",
               str("a length >= ", fixed, " (room for the passkey, or the records and queries)"),
               str(retrieval_max_tokens));
}

// ---- the lexicon ----

size_t SynthLanguage::Category::pick(Rng& rng) const {
  const uint64_t x = rng.below(cumulative.back());
  return static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), x) - cumulative.begin());
}

SynthLanguage::SynthLanguage(int64_t vocab_size, uint64_t seed) : vocab_size_(vocab_size) {
  NSA_CHECK(vocab_size >= kSynthMinVocab && vocab_size <= kSynthMaxVocab, "[synth] vocab_size ", vocab_size,
            " outside [", kSynthMinVocab, ", ", kSynthMaxVocab, "]");
  Rng rng(seed, kLexiconStream);

  // The pieces in a random order, then cut into regions: function words, stems per category, suffixes.
  std::vector<uint32_t> pieces(static_cast<size_t>(piece_count(vocab_size)));
  for (size_t i = 0; i < pieces.size(); ++i) pieces[i] = tok::kFirstPiece + static_cast<uint32_t>(i);
  for (size_t i = pieces.size(); i-- > 1;) std::swap(pieces[i], pieces[rng.below(i + 1)]);
  size_t next = 0;
  auto take = [&](size_t n) {
    std::vector<uint32_t> region(pieces.begin() + next, pieces.begin() + next + n);
    next += n;
    return region;
  };
  for (int i = 0; i < kDeterminerPairs; ++i) {
    const auto pair = take(2);
    determiners_.push_back({pair[0], pair[1]});
  }
  prepositions_ = take(kPrepositions);
  conjunctions_ = take(kConjunctions);
  const size_t content = pieces.size() - next;
  const std::vector<uint32_t> noun_stems = take(content * 35 / 100);
  const std::vector<uint32_t> verb_stems = take(content * 20 / 100);
  const std::vector<uint32_t> adjective_stems = take(content * 12 / 100);
  const std::vector<uint32_t> adverb_stems = take(content * 5 / 100);
  const std::vector<uint32_t> suffixes = take(pieces.size() - next);

  std::set<std::vector<uint32_t>> used;
  auto make_category = [&](const std::vector<uint32_t>& stems) {
    Category category;
    const size_t n_words = stems.size() * kWordsPerStem;
    for (size_t attempt = 0; category.words.size() < n_words && attempt < 20 * n_words; ++attempt) {
      Word word;
      word.pieces.push_back(stems[rng.below(stems.size())]);
      const uint64_t r = rng.below(10);  // 0 suffixes: 30%, 1: 50%, 2: 20%
      const int n_suffixes = r < 3 ? 0 : r < 8 ? 1 : 2;
      for (int s = 0; s < n_suffixes; ++s) word.pieces.push_back(suffixes[rng.below(suffixes.size())]);
      if (used.insert(word.pieces).second) category.words.push_back(std::move(word));
    }
    uint64_t total = 0;
    for (size_t rank = 0; rank < category.words.size(); ++rank) {
      total += static_cast<uint64_t>(0x1p32 / (static_cast<double>(rank) + kZipfShift));
      category.cumulative.push_back(total);
    }
    return category;
  };
  nouns_ = make_category(noun_stems);
  verbs_ = make_category(verb_stems);
  adjectives_ = make_category(adjective_stems);
  adverbs_ = make_category(adverb_stems);

  for (size_t v = 0; v < verbs_.words.size(); ++v) {
    transitive_.push_back(rng.below(10) < 7);
    std::vector<uint32_t> objects;
    for (int i = 0; i < kObjectsPerVerb; ++i)
      objects.push_back(static_cast<uint32_t>(rng.below(nouns_.words.size())));
    verb_objects_.push_back(std::move(objects));
  }
  for (int t = 0; t < kTopics; ++t) {
    Topic topic;
    for (int i = 0; i < kNounsPerTopic; ++i)
      topic.nouns.push_back(static_cast<uint32_t>(rng.below(nouns_.words.size())));
    topics_.push_back(std::move(topic));
  }
}

uint32_t SynthLanguage::random_piece(Rng& rng) const {
  return tok::kFirstPiece + static_cast<uint32_t>(rng.below(static_cast<uint64_t>(piece_count(vocab_size_))));
}

void SynthLanguage::append_word(const Word& word, std::vector<uint32_t>& out) const {
  out.insert(out.end(), word.pieces.begin(), word.pieces.end());
}

// ---- the grammar ----
// sentence    := clause (COMMA conjunction clause){0,2} PERIOD
// clause      := noun_phrase verb [SINGULAR] [noun_phrase] [adverb] [preposition noun_phrase]
// noun_phrase := determiner adjective{0,2} noun [PLURAL] [preposition noun_phrase]
// Agreement: the determiner's form follows the head noun's number; the verb takes SINGULAR after a
// singular subject head (not after the nearest noun, which may sit in the subject's prepositional
// phrase). Nouns come from the document's topic (40%), the verb's preferred objects (50% of objects),
// or the Zipfian noun list.

bool SynthLanguage::noun_phrase(Rng& rng, const Topic& topic, int depth, std::vector<uint32_t>& out,
                                const std::vector<uint32_t>* preferred_nouns) const {
  const bool plural = rng.chance(0.35);
  out.push_back(determiners_[rng.below(determiners_.size())][plural ? 1 : 0]);
  for (int i = 0; i < 2 && rng.chance(0.35); ++i) append_word(adjectives_.words[adjectives_.pick(rng)], out);
  size_t noun;
  if (preferred_nouns != nullptr && rng.chance(0.5)) {
    noun = (*preferred_nouns)[rng.below(preferred_nouns->size())];
  } else if (rng.chance(0.4)) {
    noun = topic.nouns[rng.below(topic.nouns.size())];
  } else {
    noun = nouns_.pick(rng);
  }
  append_word(nouns_.words[noun], out);
  if (plural) out.push_back(tok::kPlural);
  if (depth < 1 && rng.chance(0.15)) {
    out.push_back(prepositions_[rng.below(prepositions_.size())]);
    noun_phrase(rng, topic, depth + 1, out, nullptr);
  }
  return plural;
}

void SynthLanguage::clause(Rng& rng, const Topic& topic, std::vector<uint32_t>& out) const {
  const bool plural_subject = noun_phrase(rng, topic, 0, out, nullptr);
  const size_t verb = verbs_.pick(rng);
  append_word(verbs_.words[verb], out);
  if (!plural_subject) out.push_back(tok::kSingular);
  if (transitive_[verb] && rng.chance(0.8)) noun_phrase(rng, topic, 0, out, &verb_objects_[verb]);
  if (rng.chance(0.25)) append_word(adverbs_.words[adverbs_.pick(rng)], out);
  if (rng.chance(0.15)) {
    out.push_back(prepositions_[rng.below(prepositions_.size())]);
    noun_phrase(rng, topic, 1, out, nullptr);
  }
}

void SynthLanguage::sentence(Rng& rng, const Topic& topic, std::vector<uint32_t>& out) const {
  clause(rng, topic, out);
  for (int i = 0; i < 2 && rng.chance(0.2); ++i) {
    out.push_back(tok::kComma);
    out.push_back(conjunctions_[rng.below(conjunctions_.size())]);
    clause(rng, topic, out);
  }
  out.push_back(tok::kPeriod);
}

std::vector<int64_t> SynthLanguage::filler(Rng& rng, const Topic& topic, int64_t length,
                                           std::vector<uint32_t>& out) const {
  std::vector<int64_t> boundaries{0};
  while (static_cast<int64_t>(out.size()) < length) {
    sentence(rng, topic, out);
    boundaries.push_back(static_cast<int64_t>(out.size()));
  }
  return boundaries;
}

// ---- documents ----

SynthDocument SynthLanguage::grammar_document(Rng& rng) const {
  SynthDocument doc;
  doc.kind = DocKind::kGrammar;
  const Topic& topic = pick_topic(rng);
  for (int64_t n = rng.between(3, 20); n > 0; --n) sentence(rng, topic, doc.tokens);
  return doc;
}

SynthDocument SynthLanguage::passkey_document(Rng& rng, int64_t length, int64_t digits) const {
  SynthDocument doc;
  doc.kind = DocKind::kPasskey;
  std::vector<uint32_t> key;
  for (int64_t i = 0; i < digits; ++i) key.push_back(tok::kDigit0 + static_cast<uint32_t>(rng.below(10)));
  std::vector<uint32_t> text;
  const std::vector<int64_t> boundaries =
      filler(rng, pick_topic(rng), std::max<int64_t>(length - (2 * digits + 3), 1), text);
  const int64_t at = boundaries[rng.below(boundaries.size())];

  doc.tokens.assign(text.begin(), text.begin() + at);
  doc.tokens.push_back(tok::kPasskey);
  doc.tokens.insert(doc.tokens.end(), key.begin(), key.end());
  doc.tokens.insert(doc.tokens.end(), text.begin() + at, text.end());
  doc.tokens.push_back(tok::kQuery);
  doc.tokens.push_back(tok::kPasskey);
  doc.answers.push_back({static_cast<int64_t>(doc.tokens.size()), digits});
  doc.tokens.insert(doc.tokens.end(), key.begin(), key.end());
  return doc;
}

SynthDocument SynthLanguage::recall_document(Rng& rng, int64_t length, const SynthOptions& options) const {
  SynthDocument doc;
  doc.kind = DocKind::kRecall;
  const int64_t n_pairs =
      rng.between(std::min<int64_t>(2, options.recall_max_pairs), options.recall_max_pairs);
  const int64_t n_queries = rng.between(1, std::min(options.recall_max_queries, n_pairs));
  const int64_t record = 2 + options.recall_key_tokens + options.recall_value_tokens;

  std::set<std::vector<uint32_t>> used;
  std::vector<std::vector<uint32_t>> keys, values;
  while (static_cast<int64_t>(keys.size()) < n_pairs) {
    std::vector<uint32_t> key;
    for (int64_t i = 0; i < options.recall_key_tokens; ++i) key.push_back(random_piece(rng));
    if (!used.insert(key).second) continue;
    std::vector<uint32_t> value;
    for (int64_t i = 0; i < options.recall_value_tokens; ++i) value.push_back(random_piece(rng));
    keys.push_back(std::move(key));
    values.push_back(std::move(value));
  }

  std::vector<uint32_t> text;
  const std::vector<int64_t> boundaries =
      filler(rng, pick_topic(rng), std::max<int64_t>(length - record * (n_pairs + n_queries), 1), text);
  std::vector<int64_t> at(static_cast<size_t>(n_pairs));
  for (int64_t& a : at) a = boundaries[rng.below(boundaries.size())];
  std::sort(at.begin(), at.end());

  int64_t copied = 0;
  for (int64_t p = 0; p < n_pairs; ++p) {
    doc.tokens.insert(doc.tokens.end(), text.begin() + copied, text.begin() + at[p]);
    copied = at[p];
    doc.tokens.push_back(tok::kKey);
    doc.tokens.insert(doc.tokens.end(), keys[p].begin(), keys[p].end());
    doc.tokens.push_back(tok::kValue);
    doc.tokens.insert(doc.tokens.end(), values[p].begin(), values[p].end());
  }
  doc.tokens.insert(doc.tokens.end(), text.begin() + copied, text.end());

  // Distinct records in a random order: the first n_queries of a partial Fisher–Yates shuffle.
  std::vector<int64_t> order(static_cast<size_t>(n_pairs));
  for (int64_t p = 0; p < n_pairs; ++p) order[p] = p;
  for (int64_t q = 0; q < n_queries; ++q) {
    std::swap(order[q], order[q + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n_pairs - q)))]);
    const int64_t p = order[q];
    doc.tokens.push_back(tok::kQuery);
    doc.tokens.insert(doc.tokens.end(), keys[p].begin(), keys[p].end());
    doc.tokens.push_back(tok::kValue);
    doc.answers.push_back({static_cast<int64_t>(doc.tokens.size()), options.recall_value_tokens});
    doc.tokens.insert(doc.tokens.end(), values[p].begin(), values[p].end());
  }
  return doc;
}

// ---- splits ----

void generate_split(const SynthLanguage& language, const SynthOptions& options, const std::string& split,
                    int64_t tokens, SplitSummary* summary,
                    const std::function<void(std::span<const uint32_t>)>& consume) {
  Rng rng(options.seed, split_stream(split));
  std::vector<uint32_t> buffer;
  int64_t emitted = 0;
  while (emitted < tokens) {
    const double u = rng.uniform();
    SynthDocument doc;
    if (u < options.passkey_fraction) {
      const int64_t length = sample_length(rng, options.retrieval_min_tokens, options.retrieval_max_tokens);
      doc = language.passkey_document(rng, length, options.passkey_digits);
    } else if (u < options.passkey_fraction + options.recall_fraction) {
      const int64_t length = sample_length(rng, options.retrieval_min_tokens, options.retrieval_max_tokens);
      doc = language.recall_document(rng, length, options);
    } else {
      doc = language.grammar_document(rng);
    }
    if (summary != nullptr) ++summary->documents[static_cast<int>(doc.kind)];
    buffer.clear();
    buffer.push_back(tok::kEot);
    buffer.insert(buffer.end(), doc.tokens.begin(), doc.tokens.end());
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(buffer.size()), tokens - emitted);
    consume(std::span<const uint32_t>(buffer.data(), static_cast<size_t>(n)));
    emitted += n;
  }
  if (summary != nullptr) summary->tokens += emitted;
}

std::vector<uint32_t> synth_split(const SynthLanguage& language, const SynthOptions& options,
                                  const std::string& split, int64_t tokens, SplitSummary* summary) {
  std::vector<uint32_t> stream;
  stream.reserve(static_cast<size_t>(tokens));
  generate_split(language, options, split, tokens, summary,
                 [&](std::span<const uint32_t> t) { stream.insert(stream.end(), t.begin(), t.end()); });
  return stream;
}

SynthSummary run_synth(const SynthOptions& options, const std::string& out_dir) {
  options.validate();
  const SynthLanguage language(options.vocab_size, options.seed);
  SynthSummary summary;
  TokenStats stats(options.vocab_size);

  ShardSink train(out_dir, "train", options.shard_tokens, 1);
  generate_split(language, options, "train", options.train_tokens, &summary.train,
                 [&](std::span<const uint32_t> t) {
                   train.append(t);
                   stats.add(t);
                 });
  summary.train.shards = static_cast<int64_t>(train.finish().size());

  ShardSink val(out_dir, "val", options.shard_tokens, 1);
  generate_split(language, options, "val", options.val_tokens, &summary.val,
                 [&](std::span<const uint32_t> t) { val.append(t); });
  summary.val.shards = static_cast<int64_t>(val.finish().size());

  summary.unigram_entropy = stats.unigram_entropy();
  summary.bigram_entropy = stats.bigram_entropy();
  return summary;
}

// ---- statistics ----

TokenStats::TokenStats(int64_t vocab_size)
    : vocab_size_(vocab_size), unigram_(static_cast<size_t>(vocab_size)) {
  if (vocab_size <= kMaxBigramVocab) bigram_.resize(static_cast<size_t>(vocab_size * vocab_size));
}

void TokenStats::add(std::span<const uint32_t> tokens) {
  for (const uint32_t t : tokens) {
    NSA_CHECK(t < static_cast<uint64_t>(vocab_size_), "[synth] token ", t, " outside vocab ", vocab_size_);
    ++unigram_[t];
    if (!bigram_.empty() && previous_ >= 0) ++bigram_[static_cast<size_t>(previous_ * vocab_size_ + t)];
    previous_ = t;
  }
}

double TokenStats::unigram_entropy() const {
  int64_t total = 0;
  for (const int64_t c : unigram_) total += c;
  double h = 0;
  for (const int64_t c : unigram_) {
    if (c > 0) h -= static_cast<double>(c) / total * std::log(static_cast<double>(c) / total);
  }
  return h;
}

double TokenStats::bigram_entropy() const {
  if (bigram_.empty()) return -1;
  // H(next | previous) = Σ_prev p(prev) H(next | prev) = -Σ c(prev, next)/N · log(c(prev, next) / c(prev)).
  int64_t total = 0;
  for (const int64_t c : bigram_) total += c;
  if (total == 0) return 0;
  double h = 0;
  for (int64_t prev = 0; prev < vocab_size_; ++prev) {
    const int64_t* row = bigram_.data() + prev * vocab_size_;
    int64_t row_total = 0;
    for (int64_t next = 0; next < vocab_size_; ++next) row_total += row[next];
    for (int64_t next = 0; next < vocab_size_; ++next) {
      if (row[next] > 0) {
        h -= static_cast<double>(row[next]) / total * std::log(static_cast<double>(row[next]) / row_total);
      }
    }
  }
  return h;
}

}  // namespace nsa::data_tools
