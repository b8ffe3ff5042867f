// How data parallelism lays gradients out for communication: parameters grouped into buckets (each one
// flat f32 buffer, reduced by one collective), and under ZeRO-1 which piece of each bucket a rank owns.
// Pure arithmetic on sizes; DistributedOptimizer does the rest.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace nsa::dist {

struct BucketSlot {
  int param = 0;       // index into the optimizer's parameter list
  int64_t offset = 0;  // first element in the bucket's buffer
  int64_t numel = 0;
};

struct Bucket {
  std::vector<BucketSlot> slots;  // in fill order, contiguous from offset 0
  int64_t numel = 0;              // Σ slot sizes
  int64_t padded = 0;             // buffer size: numel rounded up to the padding multiple (zeros at the end)
};

// Parameters `order` (indices into `numels`, the order their gradients are expected to become final)
// packed into consecutive buckets: a bucket closes once it holds at least `target_numel` elements (one
// larger parameter fills a bucket alone; the last bucket may be smaller). Each bucket is padded to a
// multiple of `pad_multiple` (the DP size under ZeRO-1, so that it splits into equal chunks).
std::vector<Bucket> plan_buckets(std::span<const int64_t> numels, std::span<const int> order,
                                 int64_t target_numel, int pad_multiple);

// ZeRO-1: rank `rank` of `ranks` owns elements [rank·C, (rank+1)·C) of a bucket, C = padded / ranks. The
// parts of the bucket's parameters that fall inside, in slot order (padding owns nothing).
struct OwnedPiece {
  int param = 0;
  int64_t param_begin = 0;  // first owned element of the flattened parameter
  int64_t chunk_begin = 0;  // where it sits in the rank's chunk
  int64_t numel = 0;
};
std::vector<OwnedPiece> owned_pieces(const Bucket& bucket, int rank, int ranks);

}  // namespace nsa::dist
