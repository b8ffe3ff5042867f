#include "dist/grad_buckets.h"

#include <algorithm>

#include "core/error.h"

namespace nsa::dist {

std::vector<Bucket> plan_buckets(std::span<const int64_t> numels, std::span<const int> order,
                                 int64_t target_numel, int pad_multiple) {
  NSA_CHECK(target_numel >= 1 && pad_multiple >= 1, "[plan_buckets] target ", target_numel, ", padding ",
            pad_multiple);
  std::vector<Bucket> buckets;
  Bucket current;
  auto close = [&] {
    current.padded = (current.numel + pad_multiple - 1) / pad_multiple * pad_multiple;
    buckets.push_back(std::move(current));
    current = Bucket();
  };
  for (const int p : order) {
    NSA_CHECK(p >= 0 && static_cast<size_t>(p) < numels.size(), "[plan_buckets] parameter index ", p);
    current.slots.push_back({p, current.numel, numels[p]});
    current.numel += numels[p];
    if (current.numel >= target_numel) close();
  }
  if (!current.slots.empty()) close();
  return buckets;
}

std::vector<OwnedPiece> owned_pieces(const Bucket& bucket, int rank, int ranks) {
  NSA_CHECK(ranks >= 1 && rank >= 0 && rank < ranks && bucket.padded % ranks == 0, "[owned_pieces] rank ",
            rank, " of ", ranks, " in a bucket of ", bucket.padded);
  const int64_t chunk = bucket.padded / ranks;
  const int64_t lo = rank * chunk, hi = lo + chunk;
  std::vector<OwnedPiece> pieces;
  for (const BucketSlot& s : bucket.slots) {
    const int64_t begin = std::max(lo, s.offset), end = std::min(hi, s.offset + s.numel);
    if (begin < end) pieces.push_back({s.param, begin - s.offset, begin - lo, end - begin});
  }
  return pieces;
}

}  // namespace nsa::dist
