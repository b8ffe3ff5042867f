// BatchSampler: deterministic, resumable batches of windows for data-parallel training and evaluation.
//
// An epoch is an order of all N windows of the dataset: with shuffle, a Fisher–Yates permutation drawn
// from Philox keyed by the seed, with the epoch number in the counter (so it depends on (seed, epoch)
// only, never on the library or the platform); without shuffle, window order 0, 1, 2, ...
//
// A step takes the next G = micro_batch × world windows of the order (positions p .. p+G-1); rank r
// reads positions p + r·micro_batch .. p + r·micro_batch + micro_batch - 1. So the ranks of a step read
// disjoint windows, and together they read what a single rank with micro_batch × world would. When fewer
// than G positions are left in the epoch, they are skipped and the next epoch starts at position 0.
//
// The cursor (epoch, position) is the same on every rank: the state to checkpoint. After set_cursor(c)
// the batches are those an uninterrupted sampler produces after reaching c.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace nsa {

struct Batch {
  int64_t batch = 0;             // rows (the micro-batch)
  int64_t seq_len = 0;           // tokens per row
  std::vector<int32_t> inputs;   // [batch, seq_len] row-major: window[0 .. seq_len-1]
  std::vector<int32_t> targets;  // [batch, seq_len]: window[1 .. seq_len]
};

struct DataCursor {
  uint64_t epoch = 0;
  uint64_t position = 0;  // windows of the epoch's order already consumed (all ranks together)
  bool operator==(const DataCursor&) const = default;
};

class BatchSampler {
 public:
  // Throws InputError when the dataset has fewer windows than one step needs (micro_batch × world).
  // The dataset must outlive the sampler and stay in place.
  BatchSampler(const TokenDataset& dataset, int64_t seq_len, int64_t micro_batch, uint64_t seed, int rank,
               int world, bool shuffle);

  // This rank's next micro-batch; advances the cursor by micro_batch × world windows.
  Batch next();
  // The same into an existing batch (reuses its buffers).
  void next(Batch& out);

  DataCursor cursor() const { return cursor_; }
  // Throws InputError when the cursor cannot belong to this dataset (position past the epoch's end).
  void set_cursor(DataCursor cursor);
  // Back to epoch 0, position 0 (evaluation reads the same batches every time).
  void reset() { set_cursor(DataCursor{}); }

  int64_t num_windows() const { return windows_.size(); }
  // Steps per epoch: num_windows / (micro_batch × world), rounded down.
  int64_t steps_per_epoch() const { return windows_.size() / global_windows_; }
  // The window indices this rank reads at the next step (for tests and debugging).
  std::vector<int64_t> peek_windows() const;

 private:
  void start_epoch(uint64_t epoch);
  int64_t window_at(uint64_t position) const;

  Windows windows_;
  int64_t micro_batch_;
  int64_t global_windows_;  // micro_batch × world
  uint64_t seed_;
  int rank_;
  bool shuffle_;
  DataCursor cursor_;
  uint64_t order_epoch_ = UINT64_MAX;  // the epoch `order_` holds
  std::vector<uint32_t> order_;        // the epoch's permutation (shuffle only)
  std::vector<int32_t> window_buffer_;
};

// The permutation of [0, n) for (seed, epoch): Fisher–Yates, swap partner of i drawn from
// Philox(key = seed, counter = (i, epoch)) by a 64-bit multiply-shift (bias below 2^-32 for n < 2^32).
std::vector<uint32_t> epoch_permutation(uint64_t n, uint64_t seed, uint64_t epoch);

}  // namespace nsa
