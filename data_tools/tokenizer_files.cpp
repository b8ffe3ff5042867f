#include "tokenizer_files.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <unordered_map>

#include "byte_level.h"
#include "core/error.h"
#include "document_reader.h"
#include "io/json.h"

namespace nsa::data_tools {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEotCandidates[] = {"<|endoftext|>", "<|end_of_text|>", "<|begin_of_text|>", "</s>",
                                          "<s>"};

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

json::Value read_json_file(const std::string& path) {
  return json::parse(read_file(path), path, kTokenizerJsonOptions);
}

// Fills token_bytes[id] from a map of byte-level strings to ids (encoder.json, model.vocab).
void add_byte_level_vocab(const json::Value& vocab, BpeDefinition& d,
                          std::unordered_map<std::string, uint32_t>& ids) {
  for (const auto& [text, value] : vocab.as_object()) {
    const int64_t id = value.as_int();
    if (id < 0 || id >= (int64_t{1} << 31))
      throw InputError(str(value.where(), "token id ", id, " out of range"));
    const std::optional<std::string> bytes = bytes_from_byte_level(text);
    if (!bytes || bytes->empty()) {
      throw InputError(
          str(vocab.where(), "token '", text,
              "' is not written in GPT-2's byte-level alphabet (not a byte-level BPE vocabulary)"));
    }
    if (static_cast<size_t>(id) >= d.token_bytes.size()) d.token_bytes.resize(static_cast<size_t>(id) + 1);
    if (!d.token_bytes[id].empty()) throw InputError(str(vocab.where(), "token id ", id, " is used twice"));
    d.token_bytes[id] = *bytes;
    ids.emplace(text, static_cast<uint32_t>(id));
  }
}

// Resolves one merge written as two byte-level strings.
std::pair<uint32_t, uint32_t> merge_ids(const std::unordered_map<std::string, uint32_t>& ids,
                                        const std::string& left, const std::string& right,
                                        const std::string& where) {
  const auto l = ids.find(left), r = ids.find(right);
  if (l == ids.end() || r == ids.end()) {
    throw InputError(str(where, "merge '", left, " ", right, "': '", l == ids.end() ? left : right,
                         "' is not in the vocabulary"));
  }
  if (ids.count(left + right) == 0) {
    throw InputError(str(where, "merge '", left, " ", right, "' makes '", left, right,
                         "', which is not in the vocabulary"));
  }
  return {l->second, r->second};
}

void choose_eot(BpeDefinition& d, const std::string& eot, const std::string& where) {
  auto find = [&](const std::string& text) -> std::optional<uint32_t> {
    std::optional<uint32_t> plain;
    for (uint32_t id = 0; id < d.token_bytes.size(); ++id) {
      if (d.token_bytes[id] != text) continue;
      if (d.is_special.size() > id && d.is_special[id]) return id;  // a special token first
      if (!plain) plain = id;
    }
    return plain;
  };
  if (!eot.empty()) {
    const auto id = find(eot);
    if (!id) throw InputError(str(where, ": --eot: no token '", eot, "' in the vocabulary"));
    d.eot = *id;
    return;
  }
  for (const char* candidate : kEotCandidates) {
    if (const auto id = find(candidate)) {
      d.eot = *id;
      return;
    }
  }
  throw InputError(str(where, ": no end-of-text token (none of <|endoftext|>, <|end_of_text|>, ",
                       "<|begin_of_text|>, </s>, <s>); name one with --eot"));
}

// The split pattern of a tokenizer.json's pre_tokenizer, or an InputError saying what is there.
SplitPattern tokenizer_json_pattern(const json::Value& pre) {
  const std::string supported =
      "supported: ByteLevel with use_regex true (GPT-2), or Sequence [Split (GPT-2 or Llama-3 regex, "
      "Isolated), ByteLevel with use_regex false]";
  if (pre.is_null()) throw InputError(str(pre.where(), "null: not a byte-level tokenizer (", supported, ")"));
  const std::string type = pre.at("type").as_string();
  auto check_byte_level = [&](const json::Value& b, bool regex_expected) {
    if (const json::Value* p = b.find("add_prefix_space"); p != nullptr && p->as_bool()) {
      throw InputError(str(p->where(), "true is not supported (expected false)"));
    }
    const json::Value* r = b.find("use_regex");
    const bool use_regex = r == nullptr || r->as_bool();  // tokenizers' default is true
    if (use_regex != regex_expected) {
      throw InputError(str(b.where(), "ByteLevel with use_regex ", use_regex ? "true" : "false",
                           " is not supported here (", supported, ")"));
    }
  };
  if (type == "ByteLevel") {
    check_byte_level(pre, true);
    return SplitPattern::kGpt2;
  }
  if (type != "Sequence")
    throw InputError(str(pre.where(), "type '", type, "' is not supported (", supported, ")"));
  const auto& steps = pre.at("pretokenizers").as_array();
  if (steps.size() != 2 || steps[0].at("type").as_string() != "Split" ||
      steps[1].at("type").as_string() != "ByteLevel") {
    throw InputError(
        str(pre.where(), "a Sequence of ", steps.size(), " steps is not supported (", supported, ")"));
  }
  const json::Value& split = steps[0];
  const json::Value& pattern = split.at("pattern");
  const json::Value* regex = pattern.find("Regex");
  if (regex == nullptr) throw InputError(str(pattern.where(), "expected a Regex pattern (", supported, ")"));
  const std::optional<SplitPattern> known = recognize_split_pattern(regex->as_string());
  if (!known) {
    throw InputError(str(regex->where(), "the regex '", regex->as_string(),
                         "' is not one of the known split patterns (GPT-2's, Llama-3's)"));
  }
  if (const json::Value* b = split.find("behavior"); b != nullptr && b->as_string() != "Isolated") {
    throw InputError(str(b->where(), "'", b->as_string(), "' is not supported (expected Isolated)"));
  }
  if (const json::Value* inv = split.find("invert"); inv != nullptr && inv->as_bool()) {
    throw InputError(str(inv->where(), "true is not supported (expected false)"));
  }
  check_byte_level(steps[1], false);
  return *known;
}

}  // namespace

BpeTokenizer load_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe,
                             const std::string& eot) {
  BpeDefinition d;
  d.description = str("GPT-2 BPE (", encoder_json, ", ", vocab_bpe, ")");
  d.pattern = SplitPattern::kGpt2;
  std::unordered_map<std::string, uint32_t> ids;
  add_byte_level_vocab(read_json_file(encoder_json), d, ids);
  d.is_special.assign(d.token_bytes.size(), false);
  if (const auto it = ids.find("<|endoftext|>"); it != ids.end()) d.is_special[it->second] = true;

  const std::string text = read_file(vocab_bpe);
  size_t line_start = 0;
  for (int64_t number = 1; line_start < text.size(); ++number) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = text.size();
    std::string_view line(text.data() + line_start, line_end - line_start);
    line_start = line_end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (number == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      throw InputError(str(vocab_bpe, ":", number, ": expected a merge 'left right', got '", line, "'"));
    }
    d.merges.push_back(merge_ids(ids, std::string(line.substr(0, space)), std::string(line.substr(space + 1)),
                                 str(vocab_bpe, ":", number, ": ")));
  }
  choose_eot(d, eot, encoder_json);
  return BpeTokenizer(std::move(d));
}

BpeTokenizer load_tokenizer_json(const std::string& path, const std::string& eot) {
  const json::Value root = read_json_file(path);
  const json::Value& model = root.at("model");
  if (const json::Value* type = model.find("type"); type != nullptr && type->as_string() != "BPE") {
    throw InputError(str(type->where(), "'", type->as_string(), "' is not supported (only BPE)"));
  }
  if (const json::Value* n = root.find("normalizer"); n != nullptr && !n->is_null()) {
    const json::Value* type = n->is(json::Value::Kind::object) ? n->find("type") : nullptr;
    throw InputError(str(n->where(), type != nullptr ? type->as_string() : std::string("a normalizer"),
                         " is not supported (expected null)"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const json::Value* v = model.find(key); v != nullptr && !v->is_null() && !v->as_string().empty()) {
      throw InputError(str(v->where(), "'", v->as_string(), "' is not supported (expected null)"));
    }
  }
  if (const json::Value* v = model.find("byte_fallback"); v != nullptr && v->as_bool()) {
    throw InputError(str(v->where(), "true is not supported (a byte-level BPE needs no byte fallback)"));
  }
  const json::Value* pre = root.find("pre_tokenizer");
  if (pre == nullptr)
    throw InputError(str(path, ": no pre_tokenizer (a byte-level BPE tokenizer.json has one)"));

  BpeDefinition d;
  d.pattern = tokenizer_json_pattern(*pre);
  d.description = str(split_pattern_name(*d.pattern), " BPE (", path, ")");
  if (const json::Value* v = model.find("ignore_merges"); v != nullptr) d.ignore_merges = v->as_bool();
  std::unordered_map<std::string, uint32_t> ids;
  add_byte_level_vocab(model.at("vocab"), d, ids);
  d.is_special.assign(d.token_bytes.size(), false);

  for (const json::Value& m : model.at("merges").as_array()) {
    if (m.is(json::Value::Kind::array)) {
      const auto& pair = m.as_array();
      if (pair.size() != 2)
        throw InputError(str(m.where(), "expected a pair [left, right], got ", pair.size(), " items"));
      d.merges.push_back(merge_ids(ids, pair[0].as_string(), pair[1].as_string(), m.where()));
    } else {
      const std::string& s = m.as_string();
      const size_t space = s.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == s.size() ||
          s.find(' ', space + 1) != std::string::npos) {
        throw InputError(str(m.where(), "expected a merge 'left right', got '", s, "'"));
      }
      d.merges.push_back(merge_ids(ids, s.substr(0, space), s.substr(space + 1), m.where()));
    }
  }

  if (const json::Value* added = root.find("added_tokens"); added != nullptr && !added->is_null()) {
    for (const json::Value& t : added->as_array()) {
      const int64_t id = t.at("id").as_int();
      const std::string& content = t.at("content").as_string();
      if (id < 0 || id >= (int64_t{1} << 31))
        throw InputError(str(t.where(), "token id ", id, " out of range"));
      if (content.empty()) throw InputError(str(t.where(), "empty content"));
      if (static_cast<size_t>(id) >= d.token_bytes.size()) {
        d.token_bytes.resize(static_cast<size_t>(id) + 1);
        d.is_special.resize(static_cast<size_t>(id) + 1, false);
      }
      if (!d.token_bytes[id].empty() && d.token_bytes[id] != content) {
        throw InputError(str(t.where(), "id ", id, " is already the vocabulary's token '",
                             byte_level_from_bytes(d.token_bytes[id]), "'"));
      }
      d.token_bytes[id] = content;
      d.is_special[id] = true;
    }
  }
  choose_eot(d, eot, path);
  return BpeTokenizer(std::move(d));
}

BpeTokenizer load_tokenizer(const std::string& spec, const std::string& eot) {
  if (spec.empty() || spec == "bytes") {
    if (!eot.empty()) throw InputError("--eot: the byte-level tokenizer's end-of-text token is always 256");
    return BpeTokenizer::bytes();
  }
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    const std::string json = (fs::path(spec) / "tokenizer.json").string();
    if (is_file(json)) return load_tokenizer_json(json, eot);
    const std::string encoder = (fs::path(spec) / "encoder.json").string();
    const std::string merges = (fs::path(spec) / "vocab.bpe").string();
    if (is_file(encoder) && is_file(merges)) return load_gpt2_files(encoder, merges, eot);
    throw InputError(str(spec, ": no tokenizer.json, nor encoder.json and vocab.bpe, in this directory"));
  }
  if (spec.size() > 5 && spec.compare(spec.size() - 5, 5, ".json") == 0) {
    if (!fs::exists(spec, ec)) throw InputError(str(spec, ": cannot open: No such file or directory"));
    if (fs::path(spec).filename() == "encoder.json") {
      const std::string merges = (fs::path(spec).parent_path() / "vocab.bpe").string();
      if (!is_file(merges))
        throw InputError(str(merges, ": missing (GPT-2's merges go beside encoder.json)"));
      return load_gpt2_files(spec, merges, eot);
    }
    return load_tokenizer_json(spec, eot);
  }
  if (!fs::exists(spec, ec)) throw InputError(str(spec, ": cannot open: No such file or directory"));
  throw InputError(str("--tokenizer: '", spec,
                       "' is not 'bytes', a directory with tokenizer files, or a tokenizer .json file"));
}

}  // namespace nsa::data_tools
