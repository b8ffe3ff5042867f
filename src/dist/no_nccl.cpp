// Without CUDA there is no NCCL backend: asking for it is a one-line error.
#include "dist/backend_communicators.h"

namespace nsa::dist {

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm);
  throw InputError(
      "communicator backend 'nccl': this build has no CUDA (rebuild with the CUDA backend, or use mpi)");
}

}  // namespace nsa::dist
