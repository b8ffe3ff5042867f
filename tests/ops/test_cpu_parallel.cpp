// The CPU backend's thread pool (ops/cpu/parallel.h): coverage, the split, nesting, exceptions, resizing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "ops/cpu/parallel.h"

namespace nsa::cpu {
namespace {

// The chunks parallel_for hands out, sorted by begin.
std::vector<std::pair<int64_t, int64_t>> chunks_of(int64_t n, int64_t grain) {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    std::lock_guard guard(mu);
    chunks.emplace_back(b, e);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

class CpuParallel : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = num_threads(); }
  void TearDown() override { set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_F(CpuParallel, CoversEveryIndexOnceInContiguousChunks) {
  for (int threads : {1, 2, 3, 4}) {
    set_num_threads(threads);
    ASSERT_EQ(num_threads(), threads);
    for (int64_t n : {1, 2, 3, 7, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n;
      const auto chunks = chunks_of(n, 1);
      EXPECT_EQ(static_cast<int64_t>(chunks.size()), std::min<int64_t>(n, threads)) << "n=" << n;
      EXPECT_EQ(chunks.front().first, 0);
      EXPECT_EQ(chunks.back().second, n);
      for (size_t c = 1; c < chunks.size(); ++c) EXPECT_EQ(chunks[c].first, chunks[c - 1].second);
      EXPECT_EQ(chunks, chunks_of(n, 1)) << "the split must be the same every call";
    }
  }
}

TEST_F(CpuParallel, GrainLimitsTheNumberOfChunks) {
  set_num_threads(4);
  EXPECT_EQ(chunks_of(100, 60).size(), 1u);  // fewer than 2 grains: inline
  EXPECT_EQ(chunks_of(100, 40).size(), 2u);
  EXPECT_EQ(chunks_of(100, 1).size(), 4u);
  EXPECT_TRUE(chunks_of(0, 1).empty());
}

TEST_F(CpuParallel, RunsOnSeveralThreadsAndNestedCallsInline) {
  set_num_threads(2);
  std::mutex mu;
  std::vector<std::thread::id> ids;
  std::atomic<int> inner_chunks{0};
  parallel_for(2, 1, [&](int64_t, int64_t) {
    {
      std::lock_guard guard(mu);
      ids.push_back(std::this_thread::get_id());
    }
    parallel_for(10, 1, [&](int64_t b, int64_t e) {
      EXPECT_EQ(b, 0);
      EXPECT_EQ(e, 10);
      inner_chunks++;
    });
  });
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_EQ(inner_chunks.load(), 2);
}

TEST_F(CpuParallel, RethrowsAChunksException) {
  set_num_threads(2);
  EXPECT_THROW(parallel_for(2, 1,
                            [](int64_t b, int64_t) {
                              if (b == 1) throw std::runtime_error("chunk 1 failed");
                            }),
               std::runtime_error);
  int64_t total = 0;  // the pool still works afterwards
  std::mutex mu;
  parallel_for(100, 1, [&](int64_t b, int64_t e) {
    std::lock_guard guard(mu);
    total += e - b;
  });
  EXPECT_EQ(total, 100);
}

}  // namespace
}  // namespace nsa::cpu
