// The one-process communicator: every collective is the identity (or a copy between buffers).
#include "core/error.h"
#include "dist/communicator.h"
#include "ops/ops.h"

namespace nsa::dist {
namespace {

class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void all_reduce(const Tensor&, ReduceOp) override {}
  void all_gather(const Tensor& in, const Tensor& out) override { copy_flat(in, out, "all_gather"); }
  void reduce_scatter(const Tensor& in, const Tensor& out) override { copy_flat(in, out, "reduce_scatter"); }
  void broadcast(const Tensor&, int root) override {
    NSA_CHECK(root == 0, "[self communicator] broadcast root ", root, " of 1 rank");
  }
  void barrier() override {}

 private:
  static void copy_flat(const Tensor& in, const Tensor& out, const char* op) {
    NSA_CHECK(in.numel() == out.numel(), "[self communicator] ", op, ": ", in.desc(), " -> ", out.desc());
    copy_(reshape(out.alias(), {out.numel()}), reshape(in.alias(), {in.numel()}));
  }
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator() { return std::make_unique<SelfCommunicator>(); }

}  // namespace nsa::dist
