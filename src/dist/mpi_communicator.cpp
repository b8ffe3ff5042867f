// The MPI backend: CPU tensors, blocking collectives on an MPI communicator.
//   f32, f64, i32, i64 reduce natively. bf16 has no MPI type: sums and maxima are computed on an f32
//   copy (exact for max, one rounding to bf16 at the end for sums, the same on every rank), while
//   all_gather and broadcast move the raw 16-bit words.
//   Counts above INT_MAX elements are split into several calls where the collective allows it
//   (all_reduce, broadcast); all_gather and reduce_scatter refuse them (no CPU job gets there).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "dist/backend_communicators.h"
#include "ops/ops.h"

namespace nsa::dist {
namespace {

constexpr int64_t kMaxCount = INT_MAX;

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f64:
      return MPI_DOUBLE;
    case DType::f32:
      return MPI_FLOAT;
    case DType::bf16:
      return MPI_UINT16_T;  // moved as raw words; reductions go through f32
    case DType::i32:
      return MPI_INT32_T;
    case DType::i64:
      return MPI_INT64_T;
  }
  NSA_FAIL("[mpi communicator] unsupported dtype");
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::max ? MPI_MAX : MPI_SUM; }

bool overlaps(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const char*>(a.data_ptr());
  const auto* pb = static_cast<const char*>(b.data_ptr());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    NSA_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    NSA_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    NSA_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce(const Tensor& t, ReduceOp op) override {
    check(t, "all_reduce");
    if (t.dtype() == DType::bf16) {
      const Tensor wide = clone(to(t, DType::f32));
      all_reduce(wide, op);
      copy_(t, wide);
      return;
    }
    auto* p = static_cast<char*>(t.data_ptr());
    for (int64_t done = 0, n = t.numel(); done < n;) {
      const int64_t count = std::min(n - done, kMaxCount);
      NSA_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + done * t.element_size(), static_cast<int>(count),
                                  mpi_type(t.dtype()), mpi_op(op), comm_));
      done += count;
    }
  }

  void all_gather(const Tensor& in, const Tensor& out) override {
    check(in, "all_gather");
    check(out, "all_gather");
    check_pair(in, out, "all_gather", out.numel(), in.numel());
    const int count = checked_count(in.numel(), "all_gather");
    const auto* chunk = static_cast<const char*>(out.data_ptr()) + rank_ * in.nbytes();
    if (in.data_ptr() == chunk) {  // in place: `in` is this rank's chunk of `out`
      NSA_MPI_CHECK(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out.data_ptr(), count,
                                  mpi_type(out.dtype()), comm_));
      return;
    }
    NSA_CHECK(!overlaps(in, out),
              "[mpi communicator] all_gather: input and output overlap other than in place");
    NSA_MPI_CHECK(MPI_Allgather(in.data_ptr(), count, mpi_type(in.dtype()), out.data_ptr(), count,
                                mpi_type(out.dtype()), comm_));
  }

  void reduce_scatter(const Tensor& in, const Tensor& out) override {
    check(in, "reduce_scatter");
    check(out, "reduce_scatter");
    check_pair(in, out, "reduce_scatter", in.numel(), out.numel());
    const int count = checked_count(out.numel(), "reduce_scatter");
    if (in.dtype() == DType::bf16 || overlaps(in, out)) {
      // Through a private f32 (bf16) or same-dtype (in place) input: MPI's in-place form puts the result at
      // the start of the buffer, not at this rank's chunk.
      const Tensor src = clone(in.dtype() == DType::bf16 ? to(in, DType::f32) : in);
      const Tensor dst = empty(out.shape(), src.dtype(), out.device());
      reduce_scatter(src, dst);
      copy_(out, dst);
      return;
    }
    NSA_MPI_CHECK(
        MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), count, mpi_type(in.dtype()), MPI_SUM, comm_));
  }

  void broadcast(const Tensor& t, int root) override {
    check(t, "broadcast");
    NSA_CHECK(root >= 0 && root < size_, "[mpi communicator] broadcast root ", root, " of ", size_, " ranks");
    auto* p = static_cast<char*>(t.data_ptr());
    for (int64_t done = 0, n = t.numel(); done < n;) {
      const int64_t count = std::min(n - done, kMaxCount);
      NSA_MPI_CHECK(
          MPI_Bcast(p + done * t.element_size(), static_cast<int>(count), mpi_type(t.dtype()), root, comm_));
      done += count;
    }
  }

  void barrier() override { NSA_MPI_CHECK(MPI_Barrier(comm_)); }

 private:
  static void check(const Tensor& t, const char* op) {
    NSA_CHECK(t.defined(), "[mpi communicator] ", op, ": undefined tensor");
    NSA_CHECK(t.device().is_cpu() && t.is_contiguous(), "[mpi communicator] ", op,
              ": expected a contiguous CPU tensor, got ", t.desc());
  }
  void check_pair(const Tensor& in, const Tensor& out, const char* op, int64_t full, int64_t part) const {
    NSA_CHECK(in.dtype() == out.dtype() && full == part * size_, "[mpi communicator] ", op, " over ", size_,
              " ranks: ", in.desc(), " -> ", out.desc());
  }
  static int checked_count(int64_t n, const char* op) {
    NSA_CHECK(n <= kMaxCount, "[mpi communicator] ", op, ": ", n, " elements per rank is above INT_MAX");
    return static_cast<int>(n);
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

}  // namespace nsa::dist
