// Helpers of the distributed tests (run under mpirun with 2 or 4 processes; CTest registers each world
// size). Every rank runs every test; a test that fails on any rank fails on all of them (DistTest's
// TearDown), so rank 0, the only rank that prints the full report, shows it, and mpirun exits non-zero.
#pragma once

#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/layout.h"
#include "test_util.h"

namespace nsa::test {

// The world (MPI backend), made by the test main.
dist::Communicator& test_world();

// The backends this machine can test: "mpi", plus "nccl" when every process of this node has its own GPU.
std::vector<std::string> test_backends();
// Where a backend's tensors live for this process (after make_process_groups chose the GPU).
Device backend_device(const std::string& backend);

class DistTest : public ::testing::Test {
 protected:
  void TearDown() override;
};

}  // namespace nsa::test
