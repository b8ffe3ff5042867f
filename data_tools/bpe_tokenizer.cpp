#include "bpe_tokenizer.h"

#include <algorithm>
#include <bit>

#include "core/error.h"

namespace nsa::data_tools {

namespace {

bool heap_after(const EncodeState::Candidate& a, const EncodeState::Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;  // a min-heap on (rank, position)
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += str("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    }
  }
  return out;
}

}  // namespace

BpeTokenizer BpeTokenizer::bytes() {
  BpeDefinition d;
  d.description = "byte-level tokens (byte b is token b)";
  for (int b = 0; b < 256; ++b) d.token_bytes.emplace_back(1, static_cast<char>(b));
  d.token_bytes.emplace_back("<|endoftext|>");
  d.is_special.assign(257, false);
  d.is_special[256] = true;
  d.eot = 256;
  return BpeTokenizer(std::move(d));
}

BpeTokenizer::BpeTokenizer(BpeDefinition definition) : def_(std::move(definition)) {
  const std::string& what = def_.description;
  const size_t n = def_.token_bytes.size();
  if (n == 0) throw InputError(str(what, ": the vocabulary is empty"));
  if (n > (size_t{1} << 31)) throw InputError(str(what, ": ", n, " tokens are too many"));
  def_.is_special.resize(n, false);
  for (uint32_t id = 0; id < n; ++id) {
    if (def_.is_special[id] || def_.token_bytes[id].empty()) continue;
    ids_by_bytes_.emplace(def_.token_bytes[id], id);  // the first id of repeated bytes wins
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = ids_by_bytes_.find(std::string(1, static_cast<char>(b)));
    if (it == ids_by_bytes_.end()) {
      throw InputError(str(what, ": no token for the byte 0x", "0123456789abcdef"[b >> 4],
                           "0123456789abcdef"[b & 15], " (a byte-level vocabulary has all 256)"));
    }
    byte_token_[b] = it->second;
  }
  if (def_.eot >= n || def_.token_bytes[def_.eot].empty()) {
    throw InputError(str(what, ": the end-of-text token id ", def_.eot, " has no token"));
  }

  size_t slots = 16;
  while (slots < 2 * def_.merges.size() + 16) slots *= 2;
  merge_slots_.assign(slots, MergeSlot{});
  merge_shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots));
  for (uint32_t rank = 0; rank < def_.merges.size(); ++rank) {
    const auto [left, right] = def_.merges[rank];
    if (left >= n || right >= n)
      throw InputError(str(what, ": merge ", rank, " refers to a token id past the vocabulary"));
    const std::string joined = def_.token_bytes[left] + def_.token_bytes[right];
    const auto it = ids_by_bytes_.find(joined);
    if (it == ids_by_bytes_.end()) {
      throw InputError(str(what, ": merge ", rank, " makes '", printable(joined), "', which is not a token"));
    }
    // A repeated pair keeps its last rank (as GPT-2's and Hugging Face's loaders do).
    const uint64_t key = pair_key(left, right);
    size_t i = (key * 0x9E3779B97F4A7C15ull) >> merge_shift_;
    while (merge_slots_[i].key != kEmpty && merge_slots_[i].key != key) i = (i + 1) & (slots - 1);
    merge_slots_[i] = MergeSlot{key, rank, it->second};
  }
}

const BpeTokenizer::MergeSlot* BpeTokenizer::find_merge(uint32_t left, uint32_t right) const {
  const uint64_t key = pair_key(left, right);
  const size_t mask = merge_slots_.size() - 1;
  for (size_t i = (key * 0x9E3779B97F4A7C15ull) >> merge_shift_;; i = (i + 1) & mask) {
    const MergeSlot& s = merge_slots_[i];
    if (s.key == key) return &s;
    if (s.key == kEmpty) return nullptr;
  }
}

std::optional<uint32_t> BpeTokenizer::token_id(std::string_view bytes) const {
  const auto it = ids_by_bytes_.find(std::string(bytes));
  if (it == ids_by_bytes_.end()) return std::nullopt;
  return it->second;
}

void BpeTokenizer::encode(std::string_view text, EncodeState& state, std::vector<uint32_t>& out) const {
  if (!def_.pattern) {
    for (unsigned char c : text) out.push_back(byte_token_[c]);
    return;
  }
  const SplitPattern pattern = *def_.pattern;
  for (size_t i = 0; i < text.size();) {
    const size_t end = piece_end(pattern, text, i);
    encode_piece(text.substr(i, end - i), state, out);
    i = end;
  }
}

std::vector<uint32_t> BpeTokenizer::encode(std::string_view text) const {
  EncodeState state;
  std::vector<uint32_t> out;
  encode(text, state, out);
  return out;
}

void BpeTokenizer::encode_piece(std::string_view piece, EncodeState& state,
                                std::vector<uint32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_token_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const uint64_t h = PieceCache::hash(piece);
  const std::span<const uint32_t> cached = state.cache.find(piece, h);
  if (cached.data() != nullptr) {
    ++state.cache.hits;
    out.insert(out.end(), cached.begin(), cached.end());
    return;
  }
  ++state.cache.misses;
  state.piece_ids.clear();
  if (def_.ignore_merges) {
    if (const auto it = ids_by_bytes_.find(std::string(piece)); it != ids_by_bytes_.end()) {
      state.piece_ids.push_back(it->second);
    }
  }
  if (state.piece_ids.empty()) merge_bytes(piece, state, state.piece_ids);
  state.cache.insert(piece, h, state.piece_ids);
  out.insert(out.end(), state.piece_ids.begin(), state.piece_ids.end());
}

void BpeTokenizer::merge_bytes(std::string_view piece, EncodeState& state, std::vector<uint32_t>& out) const {
  // Symbols in a doubly linked list over the piece's bytes; candidates (pairs that have a merge) in a
  // min-heap on (rank, position). A popped candidate whose pair has changed since it was pushed is skipped.
  auto& sym = state.symbols;
  auto& heap = state.heap;
  const auto n = static_cast<int32_t>(piece.size());
  sym.resize(static_cast<size_t>(n));
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    sym[i] = {byte_token_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  auto push = [&](int32_t pos) {
    const int32_t next = sym[pos].next;
    if (next < 0) return;
    if (const MergeSlot* m = find_merge(sym[pos].id, sym[next].id)) {
      heap.push_back({m->rank, static_cast<uint32_t>(pos), m->merged});
      std::push_heap(heap.begin(), heap.end(), heap_after);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  constexpr uint32_t kGone = ~uint32_t{0};
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), heap_after);
    const EncodeState::Candidate c = heap.back();
    heap.pop_back();
    const auto pos = static_cast<int32_t>(c.pos);
    if (sym[pos].id == kGone) continue;
    const int32_t next = sym[pos].next;
    if (next < 0) continue;
    const MergeSlot* m = find_merge(sym[pos].id, sym[next].id);
    if (m == nullptr || m->merged != c.merged || m->rank != c.rank) continue;
    sym[pos].id = c.merged;
    sym[next].id = kGone;
    sym[pos].next = sym[next].next;
    if (sym[pos].next >= 0) sym[sym[pos].next].prev = pos;
    if (sym[pos].prev >= 0) push(sym[pos].prev);
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

std::string BpeTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string out;
  for (const uint32_t id : ids) {
    if (id >= def_.token_bytes.size() || def_.token_bytes[id].empty()) {
      throw InputError(
          str("token ", id, " is not in the vocabulary of ", def_.description, " (", vocab_size(), " ids)"));
    }
    out += def_.token_bytes[id];
  }
  return out;
}

}  // namespace nsa::data_tools
