// MPI for the lifetime of a program: MpiEnv initialises MPI (thread level FUNNELED: only the main thread
// calls MPI) unless it already is, and finalises it when the object that initialised it goes away.
// Started without mpirun, MPI comes up as a singleton: a world of one process.
//
// Destroy every communicator (ProcessGroups) before the MpiEnv: collectives need MPI alive.
#pragma once

namespace nsa::dist {

// Where this process sits: its rank in MPI_COMM_WORLD and among the processes of its node (the processes
// that share memory with it), which picks its GPU.
struct MpiWorld {
  int rank = 0, size = 1;
  int local_rank = 0, local_size = 1;
};

class MpiEnv {
 public:
  MpiEnv();
  MpiEnv(int& argc, char**& argv);  // lets MPI see (and strip) its own command-line arguments
  ~MpiEnv();
  MpiEnv(const MpiEnv&) = delete;
  MpiEnv& operator=(const MpiEnv&) = delete;

  const MpiWorld& world() const { return world_; }

 private:
  void init(int* argc, char*** argv);
  bool owner_ = false;  // this object called MPI_Init_thread
  MpiWorld world_;
};

// MPI_Init has run and MPI_Finalize has not.
bool mpi_active();
// This process's place in the world; needs MPI active (an MpiEnv), otherwise nsa::Error.
MpiWorld mpi_world();

}  // namespace nsa::dist
