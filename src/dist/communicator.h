// Communicator: collective operations among a fixed set of processes (a process group), over one of three
// backends chosen when the group is made:
//   "self" — one process; every collective is the identity (all_gather/reduce_scatter copy).
//   "mpi"  — CPU tensors, MPI collectives (blocking). This is how the distributed code runs in CI.
//   "nccl" — CUDA tensors, NCCL collectives enqueued on the *current stream* (cuda::current_stream());
//            nothing waits for the host, so a step that communicates can still be captured in a graph.
// Tensors must be contiguous and live where the backend expects them (CPU for mpi, CUDA for nccl); dtypes
// f32, f64, bf16 (sum/max), i32, i64. Every rank of the group must call the same collectives in the same
// order with the same sizes (the usual MPI/NCCL contract); mismatches are not detected.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace nsa::dist {

enum class ReduceOp { sum, max };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "self", "mpi" or "nccl"

  // t ← op over ranks of t (in place).
  virtual void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  // out (size()·in.numel() elements) ← rank 0's in, then rank 1's in, ... (flat order).
  virtual void all_gather(const Tensor& in, const Tensor& out) = 0;
  // in (size()·out.numel() elements) is cut into size() equal chunks; out ← Σ over ranks of chunk rank().
  virtual void reduce_scatter(const Tensor& in, const Tensor& out) = 0;
  // t ← root's t.
  virtual void broadcast(const Tensor& t, int root) = 0;
  // Every rank has reached this point; for nccl also waits for the work queued on the current stream.
  virtual void barrier() = 0;
};

// A one-process communicator (rank 0 of 1) for any device.
std::unique_ptr<Communicator> make_self_communicator();

}  // namespace nsa::dist
