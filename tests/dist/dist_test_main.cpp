// main() of the distributed tests: MPI up before GoogleTest, only rank 0 prints the full report (the other
// ranks print their own failures, prefixed by their rank), and the exit status is non-zero when any rank
// failed.
#include <cstdio>
#include <memory>

#include "core/cuda_api.h"
#include "dist/mpi_env.h"
#include "dist_test.h"

namespace nsa::test {
namespace {

std::unique_ptr<dist::Communicator> g_world;
int g_local_size = 1;

// The listener of ranks other than 0: their failed assertions, one line each.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, r.file_name() ? r.file_name() : "?", r.line_number(),
                 r.message());
  }

 private:
  int rank_;
};

}  // namespace

dist::Communicator& test_world() { return *g_world; }

std::vector<std::string> test_backends() {
  std::vector<std::string> b{"mpi"};
  if (cuda::available() && cuda::device_count() >= g_local_size) b.push_back("nccl");
  return b;
}

Device backend_device(const std::string& backend) {
  return backend == "nccl" ? Device::cuda(cuda::current_device()) : Device::cpu();
}

void DistTest::TearDown() {
  // Agree on the outcome: a rank that passed reports the failure of another.
  const Tensor failed = full({1}, HasFailure() ? 1.0 : 0.0, DType::i32);
  test_world().all_reduce(failed, dist::ReduceOp::max);
  if (item(failed) != 0 && !HasFailure()) ADD_FAILURE() << "failed on another rank (see its [rank N] lines)";
}

}  // namespace nsa::test

int main(int argc, char** argv) {
  nsa::dist::MpiEnv mpi(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  int status = 0;
  {
    nsa::dist::ProcessGroups groups = nsa::dist::make_process_groups("mpi", 1);
    nsa::test::g_world = std::move(groups.world);
    nsa::test::g_local_size = mpi.world().local_size;
    const int rank = mpi.world().rank;
    if (rank != 0) {
      ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());  // GoogleTest hands ownership back
      listeners.Append(std::make_unique<nsa::test::RankFailurePrinter>(rank).release());  // and takes it here
    }
    const nsa::Tensor failed = nsa::full({1}, RUN_ALL_TESTS() != 0 ? 1.0 : 0.0, nsa::DType::i32);
    nsa::test::g_world->all_reduce(failed, nsa::dist::ReduceOp::max);
    status = nsa::item(failed) != 0 ? 1 : 0;
    nsa::test::g_world.reset();
  }
  return status;
}
