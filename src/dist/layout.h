// Process layout of a distributed job: world = DP × TP, with the TP ranks of one data-parallel replica
// adjacent (world rank = dp_rank · tp_size + tp_rank), so a TP group stays inside one node (NVLink) when
// tp_size divides the GPUs per node, as in Megatron-LM.
#pragma once

#include <memory>
#include <string>

#include "core/device.h"
#include "dist/communicator.h"

namespace nsa::dist {

struct Layout {
  int world_size = 1, rank = 0;
  int tp_size = 1, tp_rank = 0;
  int dp_size = 1, dp_rank = 0;
  int local_rank = 0, local_size = 1;  // among the processes on this node (device choice)
  std::string str() const;             // "rank 3/4 = dp 1/2 × tp 1/2, local 3/4"
};

// Layout of `rank` in a world of `world_size` with TP size `tp_size` (which must divide world_size).
Layout make_layout(int world_size, int rank, int tp_size, int local_rank = 0, int local_size = 1);

// The communicators of one process: the whole world, its TP group (same dp_rank) and its DP group (same
// tp_rank). All three use one backend.
struct ProcessGroups {
  Layout layout;
  std::unique_ptr<Communicator> world, tp, dp;
};

// Single process: self communicators.
ProcessGroups make_single_process_groups();

// The groups of this process in the job MPI started (needs an MpiEnv; collective over the world: every
// process calls it with the same arguments, in the same order as any other make_process_groups).
//   backend "mpi":  CPU tensors (how the distributed code runs in CI).
//   backend "nccl": CUDA tensors; first makes GPU `local_rank` this process's current device (one process
//                   per GPU), then one NCCL communicator per group.
//   backend "self": a world of one process only.
// A tp_size that does not divide the world size, or an unknown backend, is an InputError
// "<source>: parallel.tensor_parallel_size: ..." (source: the config file, for the message).
ProcessGroups make_process_groups(const std::string& backend, int tp_size, const std::string& source = "");

}  // namespace nsa::dist
