#include "piece_cache.h"

#include <cstring>

namespace nsa::data_tools {

namespace {
constexpr size_t kInitialSlots = 1 << 12;
}

PieceCache::PieceCache(size_t byte_budget) : slots_(kInitialSlots), byte_budget_(byte_budget) {}

uint64_t PieceCache::hash(std::string_view piece) {
  // FNV-1a, then a final mix so that the low bits (the slot index) depend on every byte.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : piece) h = (h ^ c) * 0x100000001b3ull;
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  return h ^ (h >> 32);
}

std::span<const uint32_t> PieceCache::find(std::string_view piece, uint64_t h) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (!s.used) return {};
    if (s.hash == h && s.key_length == piece.size() &&
        std::memcmp(keys_.data() + s.key_offset, piece.data(), piece.size()) == 0) {
      return {ids_.data() + s.ids_offset, s.ids_length};
    }
  }
}

void PieceCache::insert(std::string_view piece, uint64_t h, std::span<const uint32_t> ids) {
  if (piece.size() > kMaxPieceBytes) return;
  if (keys_.size() + ids_.size() * sizeof(uint32_t) > byte_budget_) clear_all();
  if (2 * (used_ + 1) > slots_.size()) grow();
  const size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (slots_[i].used) i = (i + 1) & mask;
  Slot& s = slots_[i];
  s.used = true;
  s.hash = h;
  s.key_offset = static_cast<uint32_t>(keys_.size());
  s.key_length = static_cast<uint32_t>(piece.size());
  s.ids_offset = static_cast<uint32_t>(ids_.size());
  s.ids_length = static_cast<uint32_t>(ids.size());
  keys_.append(piece);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  ++used_;
}

void PieceCache::clear_all() {
  slots_.assign(kInitialSlots, Slot{});
  used_ = 0;
  keys_.clear();
  ids_.clear();
}

void PieceCache::grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (!s.used) continue;
    size_t i = s.hash & mask;
    while (slots_[i].used) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

}  // namespace nsa::data_tools
