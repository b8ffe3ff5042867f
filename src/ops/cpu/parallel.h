// A small persistent thread pool for the CPU backend.
//
// parallel_for splits [0, n) into contiguous chunks, one per thread (the caller runs the first), always the
// same way for the same n, grain and thread count. Kernels that use it must make each result independent of
// the split (one writer per output element, a fixed summation order), so that results are bit-identical
// whatever the thread count. Calls from inside a worker, from a second thread while the pool is busy, or
// with too little work run inline on the calling thread.
//
// Thread count: the CPUs this process may run on, capped by the environment variable NSA_CPU_THREADS.
#pragma once

#include <cstdint>
#include <functional>

namespace nsa::cpu {

// Threads parallel_for uses (the caller included); at least 1.
int num_threads();

// Replaces the pool with one of `threads` threads (>= 1); for tests and benchmarks. Not to be called while
// another thread runs parallel_for.
void set_num_threads(int threads);

// Calls fn(begin, end) on disjoint contiguous chunks covering [0, n). Each chunk holds at least `grain`
// indices (except when n < grain: then one chunk), so the number of chunks is min(threads, n / grain).
// Blocks until every chunk is done; rethrows the first exception a chunk threw.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace nsa::cpu
