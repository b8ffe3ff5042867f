#include "data/sampler.h"

#include <algorithm>
#include <span>
#include <utility>

#include "core/error.h"
#include "core/philox.h"

namespace nsa {

std::vector<uint32_t> epoch_permutation(uint64_t n, uint64_t seed, uint64_t epoch) {
  NSA_CHECK(n <= UINT32_MAX, "[data] ", n, " windows: the sampler indexes at most 2^32 - 1");
  std::vector<uint32_t> order(n);
  for (uint64_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  const auto k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const auto e0 = static_cast<uint32_t>(epoch), e1 = static_cast<uint32_t>(epoch >> 32);
  for (uint64_t i = n; i-- > 1;) {
    const philox::Words w = philox::philox4x32_10(
        philox::Words{{static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), e0, e1}}, k0, k1);
    const uint64_t x = (static_cast<uint64_t>(w.w[1]) << 32) | w.w[0];
    // j uniform in [0, i]: the high word of x·(i+1).
    const auto j = static_cast<uint64_t>((static_cast<unsigned __int128>(x) * (i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

BatchSampler::BatchSampler(const TokenDataset& dataset, int64_t seq_len, int64_t micro_batch, uint64_t seed,
                           int rank, int world, bool shuffle)
    : windows_(dataset, seq_len),
      micro_batch_(micro_batch),
      global_windows_(micro_batch * world),
      seed_(seed),
      rank_(rank),
      shuffle_(shuffle) {
  NSA_CHECK(micro_batch >= 1, "[data] micro_batch must be >= 1, got ", micro_batch);
  NSA_CHECK(world >= 1 && rank >= 0 && rank < world, "[data] rank ", rank, " outside world of size ", world);
  if (windows_.size() < global_windows_) {
    throw InputError(str(dataset.name(), ": ", dataset.total_tokens(), " tokens in ", dataset.shards().size(),
                         " shard(s) give ", windows_.size(), " window(s) of ", seq_len + 1,
                         " tokens (seq_len ", seq_len, " + 1), fewer than one step needs: ", global_windows_,
                         " (micro_batch ", micro_batch, " x world ", world, ")"));
  }
  window_buffer_.resize(static_cast<size_t>(seq_len + 1));
}

void BatchSampler::start_epoch(uint64_t epoch) {
  if (shuffle_ && order_epoch_ != epoch) order_ = epoch_permutation(windows_.size(), seed_, epoch);
  order_epoch_ = epoch;
}

int64_t BatchSampler::window_at(uint64_t position) const {
  return shuffle_ ? order_[position] : static_cast<int64_t>(position);
}

void BatchSampler::set_cursor(DataCursor cursor) {
  if (cursor.position > static_cast<uint64_t>(windows_.size())) {
    throw InputError(str("data cursor (epoch ", cursor.epoch, ", position ", cursor.position,
                         ") is past the end of an epoch of ", windows_.size(),
                         " windows: the checkpoint was written for another dataset or seq_len"));
  }
  cursor_ = cursor;
}

std::vector<int64_t> BatchSampler::peek_windows() const {
  DataCursor c = cursor_;
  if (c.position + global_windows_ > static_cast<uint64_t>(windows_.size())) c = DataCursor{c.epoch + 1, 0};
  std::vector<uint32_t> other_order;
  const std::vector<uint32_t>* order = &order_;
  if (shuffle_ && order_epoch_ != c.epoch) {
    other_order = epoch_permutation(windows_.size(), seed_, c.epoch);
    order = &other_order;
  }
  std::vector<int64_t> result(static_cast<size_t>(micro_batch_));
  for (int64_t j = 0; j < micro_batch_; ++j) {
    const uint64_t position = c.position + rank_ * micro_batch_ + j;
    result[j] = shuffle_ ? (*order)[position] : static_cast<int64_t>(position);
  }
  return result;
}

Batch BatchSampler::next() {
  Batch batch;
  next(batch);
  return batch;
}

void BatchSampler::next(Batch& out) {
  // Too few positions left for a whole step: the rest of this epoch is skipped (on every rank alike).
  if (cursor_.position + global_windows_ > static_cast<uint64_t>(windows_.size())) {
    cursor_ = DataCursor{cursor_.epoch + 1, 0};
  }
  start_epoch(cursor_.epoch);

  const int64_t seq_len = windows_.seq_len();
  out.batch = micro_batch_;
  out.seq_len = seq_len;
  out.inputs.resize(static_cast<size_t>(micro_batch_ * seq_len));
  out.targets.resize(static_cast<size_t>(micro_batch_ * seq_len));
  for (int64_t j = 0; j < micro_batch_; ++j) {
    windows_.read(window_at(cursor_.position + rank_ * micro_batch_ + j), window_buffer_);
    const std::span<const int32_t> window(window_buffer_);
    std::copy_n(window.begin(), seq_len, out.inputs.begin() + j * seq_len);
    std::copy_n(window.begin() + 1, seq_len, out.targets.begin() + j * seq_len);
  }
  cursor_.position += global_windows_;
}

}  // namespace nsa
