// Turning MPI return codes into nsa::Error (src/dist internal). Communicators set MPI_ERRORS_RETURN, so a
// failed call reports here instead of aborting the job.
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only (no deprecated C++ bindings)
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <string>

#include "core/error.h"

namespace nsa::dist {

inline std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

}  // namespace nsa::dist

#define NSA_MPI_CHECK(call)                                                        \
  do {                                                                             \
    const int nsa_mpi_rc_ = (call);                                                \
    if (nsa_mpi_rc_ != MPI_SUCCESS)                                                \
      NSA_FAIL("[mpi] ", #call, ": ", ::nsa::dist::mpi_error_string(nsa_mpi_rc_)); \
  } while (0)
