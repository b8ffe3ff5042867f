// The JSON reader/writer and safetensors files: round trips (f32 exact, bf16 rounded as to(bf16)), the
// byte layout the spec asks for, and one clear error line for every kind of malformed header or file.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/io_test_util.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace nsa::test {
namespace {

// ------------------------------------------------------------------------------------------------ JSON

TEST(Json, ParsesValues) {
  const json::Value v = json::parse(
      R"( {"a": [1, -2.5e3, 0, 18446744073709551615], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "t": true,
           "f": false, "n": null, "o": {}} )",
      "t");
  ASSERT_TRUE(v.is(json::Value::Kind::object));
  const json::Value* a = v.find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 4u);
  uint64_t big = 0;
  EXPECT_TRUE(a->items()[3].to_uint64(&big));
  EXPECT_EQ(big, 18446744073709551615ull);  // exact: numbers keep their text
  EXPECT_FALSE(a->items()[1].to_uint64(&big));
  double d = 0;
  EXPECT_TRUE(a->items()[1].to_double(&d));
  EXPECT_EQ(d, -2500.0);
  EXPECT_EQ(v.find("s")->text(), "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(v.find("t")->boolean());
  EXPECT_TRUE(v.find("n")->is(json::Value::Kind::null));
  EXPECT_TRUE(v.find("o")->members().empty());
  EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, RefusesInvalidText) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"a": 1,})", "expected a string key"},
      {R"([1, 2,])", "expected a value, found ']'"},
      {R"({"a": 1, "a": 2})", "duplicate key \"a\""},
      {R"({"a": 01})", "leading zero"},
      {R"({"a": 1.})", "expected digits after '.'"},
      {R"({"a": "\x"})", "invalid escape '\\x'"},
      {R"({"a": "\ud800"})", "high surrogate escape not followed by a low surrogate"},
      {R"({"a": "\udc00"})", "unpaired low surrogate"},
      {"{\"a\": \"\xff\"}", "invalid UTF-8"},
      {"{\"a\": \"\xc0\xaf\"}", "invalid UTF-8"},  // overlong
      {"{\"a\": \"tab\there\"}", "control character"},
      {R"({"a": NaN})", "expected a value, found 'NaN'"},
      {R"({"a": 1} x)", "unexpected text after the value"},
      {R"({"a": "open)", "unterminated string"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper than 64"},
      {"", "expected a value, found the end"},
  };
  for (const auto& [text, fragment] : cases) {
    SCOPED_TRACE(text);
    expect_input_error([&] { json::parse(text, "f.json"); },
                       {"f.json: malformed JSON at line 1, column", fragment});
  }
}

TEST(Json, WriterRoundTrips) {
  json::Writer w;
  w.begin_object().key("s").value("a\"b\n\x01").key("i").value(int64_t{-3}).key("u").value(uint64_t{1} << 60);
  w.key("d").begin_array().value(10000.0).value(1e-5).value(0.02).value(1e300).value(-0.0).end_array();
  w.key("b").value(true).key("n").null().key("e").begin_array().end_array().end_object();
  EXPECT_EQ(w.str(),
            R"({"s":"a\"b\n\u0001","i":-3,"u":1152921504606846976,"d":[10000.0,1e-05,0.02,1e+300,-0.0],"b":true,)"
            R"("n":null,"e":[]})");
  const json::Value v = json::parse(w.str(), "w");
  EXPECT_EQ(v.find("s")->text(), "a\"b\n\x01");
  double d = 0;
  ASSERT_TRUE(v.find("d")->items()[2].to_double(&d));
  EXPECT_EQ(d, 0.02);
  json::Writer pretty(true);
  pretty.begin_object().key("a").begin_array().value(1).end_array().end_object();
  EXPECT_EQ(pretty.str(), "{\n  \"a\": [\n    1\n  ]\n}");
}

// ------------------------------------------------------------------------------------------------ files

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A file with this header text (length prefix computed unless `length` is given) and `data_bytes` zeros.
std::string raw_file(const std::string& header, size_t data_bytes, int64_t length = -1) {
  const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

TEST(Safetensors, RoundTripF32AndLayout) {
  TempDir dir;
  Generator gen(3);
  const Tensor a = randn({3, 5}, DType::f32, Device::cpu(), &gen);
  const Tensor b = transpose(randn({4, 2}, DType::f32, Device::cpu(), &gen), 0, 1);  // non-contiguous
  const Tensor c = randn({}, DType::f32, Device::cpu(), &gen);
  const Tensor e = zeros({0, 4});
  const std::string path = dir.file("m.safetensors");
  save_safetensors(path, {{"a", a}, {"b.t", b}, {"c", c}, {"empty", e}}, DType::f32, {{"format", "pt"}, {"k", "v\n"}});

  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "the data must start 8-byte aligned";
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), 8 + n + (15 + 8 + 1) * 4);
  // The first tensor's bytes follow the header directly, as IEEE little-endian floats.
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, contiguous(a).data_ptr(), 60), 0);

  const SafetensorsContents s = load_safetensors(path);
  ASSERT_EQ(s.tensors.size(), 4u);
  EXPECT_EQ(s.tensors[1].first, "b.t");
  EXPECT_TRUE(equal_values(s.tensors[0].second, a));
  EXPECT_TRUE(equal_values(s.tensors[1].second, b));
  EXPECT_EQ(s.tensors[2].second.dim(), 0);
  EXPECT_TRUE(equal_values(s.tensors[2].second, c));
  EXPECT_EQ(s.tensors[3].second.shape(), (Dims{0, 4}));
  EXPECT_EQ(s.header.metadata, (Metadata{{"format", "pt"}, {"k", "v\n"}}));
  EXPECT_EQ(s.header.tensors[0].dtype, "F32");
  EXPECT_EQ(s.header.tensors[1].begin, 60u);
}

TEST(Safetensors, Bf16RoundsLikeTheCast) {
  TempDir dir;
  Generator gen(4);
  const Tensor a = randn({7, 3}, DType::f32, Device::cpu(), &gen);
  const std::string path = dir.file("b.safetensors");
  save_safetensors(path, {{"a", a}}, DType::bf16);
  const SafetensorsContents s = load_safetensors(path);
  EXPECT_EQ(s.header.tensors[0].dtype, "BF16");
  EXPECT_EQ(s.header.data_bytes, 42u);
  EXPECT_TRUE(equal_values(s.tensors[0].second, to(to(a, DType::bf16), DType::f32)));
}

TEST(Safetensors, ReadsF16AndF64) {
  TempDir dir;
  // F16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal); F64: 0.1
  const uint16_t half[] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
  const double dbl = 0.1;
  std::string data(reinterpret_cast<const char*>(half), 8);
  data.append(reinterpret_cast<const char*>(&dbl), 8);
  std::string file = raw_file(R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},)"
                              R"("d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 0);
  write_bytes(dir.file("x.safetensors"), file + data);
  const SafetensorsContents s = load_safetensors(dir.file("x.safetensors"));
  EXPECT_EQ(to_vector<float>(s.tensors[0].second), (std::vector<float>{1.0f, -2.0f, 65504.0f, 0x1p-24f}));
  EXPECT_EQ(to_vector<float>(s.tensors[1].second), (std::vector<float>{0.1f}));
}

TEST(Safetensors, MalformedFiles) {
  TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  const std::string t = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    std::string bytes, fragment;
  };
  const std::vector<Case> cases = {
      {"abc", "3 bytes, shorter than the 8-byte header length"},
      {raw_file("{}", 0, 1ll << 40), "exceeds the 100 MB limit"},
      {raw_file("{}", 0, 50), "exceeds the file's 2 bytes after it"},
      {raw_file("[1]", 0), "the header is not a JSON object"},
      {raw_file("{\"t\": 1,}", 0),
       "bad.safetensors: header: malformed JSON at line 1, column 9: expected a string key"},
      {raw_file("{" + t + "," + t + "}", 8), "duplicate key \"t\""},
      {raw_file(R"({"t":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}})", 2), "\"t\": unknown dtype \"Q8\""},
      {raw_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       "data_offsets [0, 8) hold 8 bytes, but F32[3] needs 12"},
      {raw_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "shape: expected non-negative integers"},
      {raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "0 <= begin <= end"},
      {raw_file(R"({"t":{"dtype":"F32","shape":[2]}})", 8), "missing field 'data_offsets'"},
      {raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), "unexpected field \"x\""},
      {raw_file(R"({"t":[1]})", 8), "expected an object {dtype, shape, data_offsets}"},
      {raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12), "data starts at byte 4, expected 0 (a hole"},
      {raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "data starts at byte 4, expected 8 (overlaps"},
      {raw_file("{" + t + "}", 4), "cover 8 bytes of data, the file holds 4 (truncated?)"},
      {raw_file("{" + t + "}", 12), "the file holds 12 (trailing bytes"},
      {raw_file(R"({"__metadata__":{"k":1}})", 0), "\"k\": metadata values must be strings"},
      {raw_file(R"({"t":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8), "t: unsupported dtype I32"},
      {raw_file(R"({"t":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4), "rank 9 exceeds"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fragment);
    write_bytes(p, c.bytes);
    expect_input_error([&] { load_safetensors(p); }, {p + ": ", c.fragment});
  }
  expect_input_error([&] { load_safetensors(dir.file("none.safetensors")); }, {"none.safetensors: no such file"});
  expect_input_error([&] { load_safetensors(dir.path()); }, {"not a regular file"});
}

}  // namespace
}  // namespace nsa::test
