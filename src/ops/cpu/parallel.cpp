// The CPU backend's thread pool: workers sleep on a generation counter (futex-backed std::atomic::wait),
// the caller publishes a job by bumping it, runs chunk 0 itself and sleeps on the count of workers still
// busy. One job at a time; a caller that finds the pool busy (or is itself a worker) runs inline.
#include "ops/cpu/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace nsa::cpu {
namespace {

// True on pool workers and on a caller while it runs its own chunk: nested parallel_for runs inline.
thread_local bool inside_parallel_region = false;

class ScopedRegion {
 public:
  ScopedRegion() : previous_(inside_parallel_region) { inside_parallel_region = true; }
  ~ScopedRegion() { inside_parallel_region = previous_; }
  ScopedRegion(const ScopedRegion&) = delete;
  ScopedRegion& operator=(const ScopedRegion&) = delete;

 private:
  bool previous_;
};

class Pool {
 public:
  explicit Pool(int threads) {
    workers_.reserve(static_cast<size_t>(threads - 1));
    for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
  }

  ~Pool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs chunk(c) for c in [0, chunks) (chunks <= threads()), chunk 0 on the caller. False (nothing run)
  // when another thread holds the pool.
  bool try_run(int chunks, const std::function<void(int)>& chunk) {
    std::unique_lock lock(dispatch_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    job_ = &chunk;
    job_chunks_ = chunks;
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    run_chunk(0);
    for (int left = pending_.load(std::memory_order_acquire); left != 0;
         left = pending_.load(std::memory_order_acquire)) {
      pending_.wait(left, std::memory_order_acquire);
    }
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void run_chunk(int c) {
    if (c >= job_chunks_) return;
    ScopedRegion region;
    try {
      (*job_)(c);
    } catch (...) {
      std::lock_guard guard(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void worker_loop(int index) {
    inside_parallel_region = true;
    uint64_t seen = 0;
    for (;;) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      run_chunk(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // Written by the dispatching caller before the generation bump, read by workers after seeing it.
  const std::function<void(int)>* job_ = nullptr;
  int job_chunks_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int default_threads() {
  const int cpus = available_cpus();
  const char* env = std::getenv("NSA_CPU_THREADS");
  if (env == nullptr || *env == '\0') return cpus;
  char* end = nullptr;
  const long requested = std::strtol(env, &end, 10);
  if (*end != '\0' || requested < 1) {
    throw InputError(str("NSA_CPU_THREADS: expected a positive integer, got '", env, "'"));
  }
  return static_cast<int>(std::min<long>(requested, cpus));
}

std::mutex pool_mutex;
std::unique_ptr<Pool> pool;  // created on first use; joined at exit by its destructor

Pool& get_pool() {
  std::lock_guard guard(pool_mutex);
  if (!pool) pool = std::make_unique<Pool>(default_threads());
  return *pool;
}

}  // namespace

int num_threads() { return get_pool().threads(); }

void set_num_threads(int threads) {
  NSA_CHECK(threads >= 1, "[set_num_threads] expected at least 1 thread, got ", threads);
  std::lock_guard guard(pool_mutex);
  pool.reset();
  pool = std::make_unique<Pool>(threads);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (inside_parallel_region) {  // nested: this thread is one of the pool's already
    fn(0, n);
    return;
  }
  Pool& p = get_pool();
  const int64_t chunks =
      std::min<int64_t>(p.threads(), std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)));
  if (chunks > 1) {
    const std::function<void(int)> chunk = [&](int c) { fn(n * c / chunks, n * (c + 1) / chunks); };
    if (p.try_run(static_cast<int>(chunks), chunk)) return;
  }
  fn(0, n);
}

}  // namespace nsa::cpu
