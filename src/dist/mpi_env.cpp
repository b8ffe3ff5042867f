#include "dist/mpi_env.h"

#include "dist/mpi_check.h"

namespace nsa::dist {

bool mpi_active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

MpiWorld mpi_world() {
  NSA_CHECK(mpi_active(), "[dist] MPI is not initialised (create an nsa::dist::MpiEnv first)");
  MpiWorld w;
  NSA_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank));
  NSA_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &w.size));
  // The processes that can share memory with this one are the ones on this node.
  MPI_Comm node = MPI_COMM_NULL;
  NSA_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &node));
  NSA_MPI_CHECK(MPI_Comm_rank(node, &w.local_rank));
  NSA_MPI_CHECK(MPI_Comm_size(node, &w.local_size));
  NSA_MPI_CHECK(MPI_Comm_free(&node));
  return w;
}

MpiEnv::MpiEnv() { init(nullptr, nullptr); }

MpiEnv::MpiEnv(int& argc, char**& argv) { init(&argc, &argv); }

void MpiEnv::init(int* argc, char*** argv) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  NSA_CHECK(!finalized, "[dist] MPI was already finalised in this process (it cannot be started twice)");
  if (!initialized) {
    int provided = 0;
    NSA_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    owner_ = true;
    NSA_CHECK(provided >= MPI_THREAD_FUNNELED, "[dist] MPI gives thread level ", provided,
              ", below MPI_THREAD_FUNNELED");
    // Errors come back as return codes (NSA_MPI_CHECK turns them into nsa::Error) instead of aborting.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  world_ = mpi_world();
}

MpiEnv::~MpiEnv() {
  if (owner_ && mpi_active()) MPI_Finalize();
}

}  // namespace nsa::dist
