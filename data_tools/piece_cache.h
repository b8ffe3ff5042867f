// PieceCache: pre-token bytes -> token ids, so that a word seen before is not merged again (natural text
// repeats most of its pieces: on the Brown corpus 99% of the lookups hit). One per thread. Open addressing
// over two arenas (key bytes, ids); when the arenas pass their budget the cache starts empty again, so
// memory stays bounded whatever the input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nsa::data_tools {

class PieceCache {
 public:
  // Pieces longer than this are not cached (rarely repeated, and they would crowd out the short ones).
  static constexpr size_t kMaxPieceBytes = 128;

  explicit PieceCache(size_t byte_budget = size_t{64} << 20);

  static uint64_t hash(std::string_view piece);
  // The cached ids of `piece` (whose hash() is `h`), or an empty span with a null data() on a miss.
  std::span<const uint32_t> find(std::string_view piece, uint64_t h) const;
  void insert(std::string_view piece, uint64_t h, std::span<const uint32_t> ids);

  int64_t hits = 0, misses = 0;  // counted by the caller, for the summary

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0, key_length = 0;  // into keys_
    uint32_t ids_offset = 0, ids_length = 0;  // into ids_
    bool used = false;
  };
  void clear_all();
  void grow();

  std::vector<Slot> slots_;
  size_t used_ = 0;
  std::string keys_;
  std::vector<uint32_t> ids_;
  size_t byte_budget_;
};

}  // namespace nsa::data_tools
