// The communicators over MPI process groups (src/dist internal; layout.cpp makes them). Each takes
// ownership of `comm` (freed when the communicator goes, unless MPI is already finalised).
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "dist/mpi_check.h"

namespace nsa::dist {

// CPU tensors, blocking MPI collectives (mpi_communicator.cpp).
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);
// CUDA tensors on the current device, NCCL collectives on the current stream; the NCCL unique id is
// broadcast over `comm`, which also carries the barrier (nccl_communicator.cpp; without CUDA, an error).
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm);

}  // namespace nsa::dist
