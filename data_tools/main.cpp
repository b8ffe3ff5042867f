// nsa-data: the data tools. `synth` writes the synthetic corpus, `tokenize` turns text or JSON lines into
// byte-level shards, `inspect` reads shards back. Every error is one line on stderr and exit code 1.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "args.h"
#include "core/error.h"
#include "data/shard.h"
#include "synth.h"
#include "tokenize.h"

namespace nsa::data_tools {
namespace {

constexpr const char* kUsage =
    "usage: nsa-data <command> [options]\n"
    "\n"
    "commands:\n"
    "  synth     write a synthetic corpus (grammar text + passkey and recall documents) as uint16 shards\n"
    "  tokenize  byte-level tokenize text files or .jsonl files into uint16 shards (vocab 257, EOT 256)\n"
    "  inspect   print the header and token range of shards; exit 1 if one is bad\n"
    "\n"
    "nsa-data <command> --help describes its options. docs/data.md documents the formats.\n";

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
    "byte-level tokens (byte b -> token b, EOT 256 before each document; vocab 257), uint16 shards\n"
    "DIR/train_000.bin ... and DIR/val_000.bin ...\n"
    "an INPUT ending in .jsonl holds one JSON object per line (one document each); any other INPUT is\n"
    "one document\n"
    "\n"
    "  --out DIR            output directory (created if missing)\n"
    "  --jsonl-field NAME   the string field holding a .jsonl document's text (default text)\n"
    "  --shard-tokens N     tokens per shard file (default 100000000)\n"
    "  --val-fraction F     share of the tokens for the val split, in [0, 1) (default 0.01)\n"
    "  --quiet              no progress lines on stderr\n";

constexpr const char* kInspectUsage =
    "usage: nsa-data inspect [options] SHARD...\n"
    "prints each shard's header, token count, smallest and largest token and its first tokens;\n"
    "exits 1 if any shard is bad\n"
    "\n"
    "  --vocab N   also check that every token is < N\n"
    "  --show N    how many first tokens to print (default 16)\n";

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

int tokenize_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kTokenizeUsage, stdout);
    return 0;
  }
  const Args args("tokenize", argv,
                  {{"out"}, {"jsonl-field"}, {"shard-tokens"}, {"val-fraction"}, {"quiet", false}});
  TokenizeOptions o;
  o.out_dir = args.text("out", "");
  o.inputs = args.positional();
  o.jsonl_field = args.text("jsonl-field", o.jsonl_field);
  o.shard_tokens = args.count("shard-tokens", o.shard_tokens);
  o.val_fraction = args.number("val-fraction", o.val_fraction);
  o.progress = !args.has("quiet");
  if (o.out_dir.empty()) throw InputError("tokenize: --out DIR is required");
  if (o.inputs.empty()) throw InputError("tokenize: no input files (see nsa-data tokenize --help)");

  const auto start = std::chrono::steady_clock::now();
  const TokenizeSummary s = run_tokenize(o);
  std::printf("nsa-data tokenize: %s, %lld bytes -> %s in %.1f s (vocab %lld, EOT %u)\n",
              plural(static_cast<int64_t>(o.inputs.size()), "input").c_str(),
              static_cast<long long>(s.input_bytes), o.out_dir.c_str(), seconds_since(start),
              static_cast<long long>(kByteVocab), kByteEot);
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
  return 0;
}

int inspect_command(const std::vector<std::string>& argv) {
  if (wants_help(argv)) {
    std::fputs(kInspectUsage, stdout);
    return 0;
  }
  const Args args("inspect", argv, {{"vocab"}, {"show"}});
  if (args.positional().empty()) throw InputError("inspect: no shard files given");
  const int64_t vocab = args.count("vocab", 0);
  const int64_t show = args.count("show", 16);
  int bad = 0;
  for (const std::string& path : args.positional()) {
    try {
      const Shard shard = Shard::open(path);
      if (vocab > 0) shard.check_vocab(vocab);
      const auto [lo, hi] = shard.min_max();
      std::printf("%s: version %d (uint%d tokens), %lld tokens, min %u, max %u\n  first:", path.c_str(),
                  shard.version(), shard.bytes_per_token() * 8, static_cast<long long>(shard.size()), lo, hi);
      for (int64_t i = 0; i < std::min(show, shard.size()); ++i) std::printf(" %u", shard.token(i));
      std::printf("%s\n", shard.size() > show ? " ..." : "");
    } catch (const InputError& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "nsa-data: %s\n", e.what());
      ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
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
  throw InputError(str("unknown command '", command, "' (synth, tokenize, inspect; see nsa-data --help)"));
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
