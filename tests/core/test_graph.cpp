// A whole training step (forward + backward) captured in a CUDA graph: proves that no op synchronises
// with the host or allocates outside the stream order, and that replays compute what eager execution does.
#include "core/allocator.h"
#include "test_util.h"
#include "tiny_net.h"

namespace nsa {
namespace {

std::vector<Tensor> grads_of(const test::TinyNet& net) {
  std::vector<Tensor> g;
  for (const Tensor& p : net.params) g.push_back(clone(p.grad()));
  return g;
}

TEST(CudaGraph, CapturedStepMatchesEagerAndReplays) {
  NSA_REQUIRE_GPU();
  const Device d = Device::cuda();
  test::TinyNet net(d, DType::f32);
  const test::TinyBatch batch(d, 1), other(d, 2);

  // Eager references for both batches (the first eager step also creates cuBLASLt plans and workspaces).
  backward(net.loss(other));
  const std::vector<Tensor> ref_other = grads_of(net);
  net.clear_grads();
  Tensor ref_loss = net.loss(batch);
  backward(ref_loss);
  const std::vector<Tensor> ref = grads_of(net);
  net.clear_grads();
  // The batch the graph reads: allocated before the capture, refilled in place between replays.
  const test::TinyBatch input(d, 1);
  const int64_t before = memory_stats(d).allocated_bytes;
  Tensor loss;
  {
    cuda::Graph graph;
    graph.capture_begin();
    loss = net.loss(input);
    backward(loss);
    graph.capture_end();

    for (int replay = 0; replay < 2; ++replay) {
      graph.replay();
      EXPECT_NEAR(item(loss), item(ref_loss), 1e-6);
      for (size_t i = 0; i < ref.size(); ++i)
        EXPECT_LT(test::rel_error(net.params[i].grad(), ref[i]), 1e-6)
            << "param " << i << " replay " << replay;
    }
    {
      NoGradGuard no_grad;
      copy_(input.ids, other.ids);
      copy_(input.targets, other.targets);
    }
    graph.replay();
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_LT(test::rel_error(net.params[i].grad(), ref_other[i]), 1e-6) << "param " << i << " new batch";
  }
  // Graph gone, its outputs dropped: memory is back where it was before the capture.
  loss = Tensor();
  net.clear_grads();
  EXPECT_EQ(memory_stats(d).allocated_bytes, before) << "the captured step leaked";
}

}  // namespace
}  // namespace nsa
