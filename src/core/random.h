// Generator: the host-side state of a Philox stream, (seed, offset). Every random op reserves a range of
// the stream and passes (seed, first offset) to the backend, which computes element e from philox(seed, e)
// alone (core/philox.h). So the numbers depend only on the seed and the order of random calls: identical on
// CPU and CUDA, and on every rank that uses the same seed.
#pragma once

#include <cstdint>

namespace nsa {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n elements; returns the offset of the first. Ranges start on a Philox block (4 words).
  uint64_t take(uint64_t n) {
    const uint64_t first = offset_;
    offset_ += (n + 3) / 4 * 4;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used when an op is not given one (seeded with 0 until the trainer seeds it).
Generator& default_generator();

}  // namespace nsa
