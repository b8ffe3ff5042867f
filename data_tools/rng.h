// A small sequential random generator for the data tools (splitmix64): the same numbers on every platform
// and standard library, unlike std::uniform_int_distribution and friends, whose algorithms are
// implementation-defined. Not for the training sampler (that uses Philox, counter-based, in src/data).
#pragma once

#include <cstdint>

namespace nsa::data_tools {

// One splitmix64 output step: a bijective mix of a 64-bit value.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  // `stream` separates independent sequences drawn from one seed (the lexicon, the train split, ...).
  explicit Rng(uint64_t seed, uint64_t stream = 0)
      : state_(mix64(seed) ^ mix64(stream + 0x632BE59BD9B4E019ull)) {}

  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix64(state_);
  }
  // Uniform in [0, n) by a 64-bit multiply-shift (bias below n / 2^64), n >= 1.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform integer in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1) with 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

}  // namespace nsa::data_tools
