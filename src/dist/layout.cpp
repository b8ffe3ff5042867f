#include "dist/layout.h"

#include "core/cuda_api.h"
#include "dist/backend_communicators.h"
#include "dist/mpi_env.h"

namespace nsa::dist {
namespace {

std::string prefix(const std::string& source) { return source.empty() ? "" : source + ": "; }

void check_tp(int world_size, int tp_size, const std::string& source) {
  if (tp_size < 1 || world_size % tp_size != 0) {
    throw InputError(str(prefix(source),
                         "parallel.tensor_parallel_size: expected a divisor of the number of processes (",
                         world_size, "), got ", tp_size));
  }
}

// Sub-communicator of `parent` holding the processes with the same color, ordered by key.
MPI_Comm split(MPI_Comm parent, int color, int key) {
  MPI_Comm comm = MPI_COMM_NULL;
  NSA_MPI_CHECK(MPI_Comm_split(parent, color, key, &comm));
  return comm;
}

}  // namespace

std::string Layout::str() const {
  return nsa::str("rank ", rank, "/", world_size, " = dp ", dp_rank, "/", dp_size, " × tp ", tp_rank, "/",
                  tp_size, ", local ", local_rank, "/", local_size);
}

Layout make_layout(int world_size, int rank, int tp_size, int local_rank, int local_size) {
  NSA_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "[make_layout] rank ", rank, " in a world of ",
            world_size);
  NSA_CHECK(local_size >= 1 && local_rank >= 0 && local_rank < local_size, "[make_layout] local rank ",
            local_rank, " of ", local_size);
  check_tp(world_size, tp_size, "");
  Layout l;
  l.world_size = world_size;
  l.rank = rank;
  l.tp_size = tp_size;
  l.tp_rank = rank % tp_size;
  l.dp_size = world_size / tp_size;
  l.dp_rank = rank / tp_size;
  l.local_rank = local_rank;
  l.local_size = local_size;
  return l;
}

ProcessGroups make_single_process_groups() {
  ProcessGroups g;
  g.world = make_self_communicator();
  g.tp = make_self_communicator();
  g.dp = make_self_communicator();
  return g;
}

ProcessGroups make_process_groups(const std::string& backend, int tp_size, const std::string& source) {
  if (backend != "mpi" && backend != "nccl" && backend != "self")
    throw InputError(
        str(prefix(source), "communicator backend: expected mpi, nccl or self, got '", backend, "'"));
  const MpiWorld w = mpi_world();
  check_tp(w.size, tp_size, source);
  const Layout layout = make_layout(w.size, w.rank, tp_size, w.local_rank, w.local_size);
  if (backend == "self") {
    if (w.size != 1)
      throw InputError(str(prefix(source), "communicator backend 'self' needs one process, got ", w.size));
    ProcessGroups g = make_single_process_groups();
    g.layout = layout;
    return g;
  }
  if (backend == "nccl") {
    if (!cuda::built_with_cuda())
      throw InputError(
          "communicator backend 'nccl': this build has no CUDA (rebuild with the CUDA backend, or use mpi)");
    const int gpus = cuda::device_count();
    if (layout.local_rank >= gpus) {
      throw InputError(str("communicator backend 'nccl': local rank ", layout.local_rank,
                           " has no GPU (this node has ", gpus, "; start at most one process per GPU)"));
    }
    cuda::set_device(layout.local_rank);
  }
  auto make = backend == "mpi" ? make_mpi_communicator : make_nccl_communicator;
  MPI_Comm world = MPI_COMM_NULL;
  NSA_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &world));
  // TP groups: the tp_size adjacent ranks of one replica; DP groups: one rank of each replica.
  MPI_Comm tp = split(MPI_COMM_WORLD, layout.dp_rank, layout.tp_rank);
  MPI_Comm dp = split(MPI_COMM_WORLD, layout.tp_rank, layout.dp_rank);
  ProcessGroups g;
  g.layout = layout;
  g.world = make(world);
  g.tp = make(tp);
  g.dp = make(dp);
  return g;
}

}  // namespace nsa::dist
