// The NCCL backend: CUDA tensors, collectives enqueued on the current stream (no host wait), bf16 native.
// Built only with CUDA (no_nccl.cpp stands in otherwise). The group's ranks agree on an ncclUniqueId
// through the group's MPI communicator, which also carries the host side of barrier().
#include <nccl.h>

#include "core/cuda/cuda_check.h"
#include "core/cuda_api.h"
#include "dist/backend_communicators.h"

#define NSA_NCCL_CHECK(expr)                                                                           \
  do {                                                                                                 \
    const ncclResult_t nsa_nccl_rc_ = (expr);                                                          \
    if (nsa_nccl_rc_ != ncclSuccess)                                                                   \
      ::nsa::throw_error(__FILE__, __LINE__,                                                           \
                         ::nsa::str("[nccl] ", #expr, " failed: ", ncclGetErrorString(nsa_nccl_rc_))); \
  } while (0)

namespace nsa::dist {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f64:
      return ncclFloat64;
    case DType::f32:
      return ncclFloat32;
    case DType::bf16:
      return ncclBfloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
  }
  NSA_FAIL("[nccl communicator] unsupported dtype");
}

cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::current_stream()); }

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(MPI_Comm comm) : mpi_comm_(comm) {
    NSA_MPI_CHECK(MPI_Comm_set_errhandler(mpi_comm_, MPI_ERRORS_RETURN));
    NSA_MPI_CHECK(MPI_Comm_rank(mpi_comm_, &rank_));
    NSA_MPI_CHECK(MPI_Comm_size(mpi_comm_, &size_));
    device_ = cuda::current_device();
    ncclUniqueId id{};
    if (rank_ == 0) NSA_NCCL_CHECK(ncclGetUniqueId(&id));
    NSA_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_comm_));
    NSA_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);  // finalises first: queued work completes
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&mpi_comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(const Tensor& t, ReduceOp op) override {
    check(t, "all_reduce");
    NSA_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()),
                                 nccl_type(t.dtype()), op == ReduceOp::max ? ncclMax : ncclSum, comm_,
                                 stream()));
  }

  void all_gather(const Tensor& in, const Tensor& out) override {
    check(in, "all_gather");
    check(out, "all_gather");
    NSA_CHECK(in.dtype() == out.dtype() && out.numel() == in.numel() * size_,
              "[nccl communicator] all_gather over ", size_, " ranks: ", in.desc(), " -> ", out.desc());
    // In place when `in` is this rank's chunk of `out` (NCCL's own in-place form).
    NSA_NCCL_CHECK(ncclAllGather(in.data_ptr(), out.data_ptr(), static_cast<size_t>(in.numel()),
                                 nccl_type(in.dtype()), comm_, stream()));
  }

  void reduce_scatter(const Tensor& in, const Tensor& out) override {
    check(in, "reduce_scatter");
    check(out, "reduce_scatter");
    NSA_CHECK(in.dtype() == out.dtype() && in.numel() == out.numel() * size_,
              "[nccl communicator] reduce_scatter over ", size_, " ranks: ", in.desc(), " -> ", out.desc());
    NSA_NCCL_CHECK(ncclReduceScatter(in.data_ptr(), out.data_ptr(), static_cast<size_t>(out.numel()),
                                     nccl_type(in.dtype()), ncclSum, comm_, stream()));
  }

  void broadcast(const Tensor& t, int root) override {
    check(t, "broadcast");
    NSA_CHECK(root >= 0 && root < size_, "[nccl communicator] broadcast root ", root, " of ", size_,
              " ranks");
    NSA_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()),
                                 nccl_type(t.dtype()), root, comm_, stream()));
  }

  void barrier() override {
    NSA_CUDA_CHECK(cudaStreamSynchronize(stream()));
    NSA_MPI_CHECK(MPI_Barrier(mpi_comm_));
  }

 private:
  void check(const Tensor& t, const char* op) const {
    NSA_CHECK(t.defined(), "[nccl communicator] ", op, ": undefined tensor");
    NSA_CHECK(t.device().is_cuda() && t.device().index == device_ && t.is_contiguous(),
              "[nccl communicator] ", op, ": expected a contiguous tensor on cuda:", device_, ", got ",
              t.desc());
  }

  MPI_Comm mpi_comm_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm) {
  return std::make_unique<NcclCommunicator>(comm);
}

}  // namespace nsa::dist
