// Memory: every tensor of a training step is freed once its backward has run (memory returns to the
// baseline), and on CUDA the caching allocator stops calling cudaMalloc once the step has warmed it.
#include "core/allocator.h"
#include "test_util.h"
#include "tiny_net.h"

namespace nsa {
namespace {

void run_step(const test::TinyNet& net, Device d) {
  const test::TinyBatch batch(d, 1);
  backward(net.loss(batch));
}

void check_memory_returns_to_baseline(Device d, DType dt) {
  test::TinyNet net(d, dt);
  // A first step creates what lives on by design (the cuBLASLt workspace on CUDA); the baseline follows it.
  run_step(net, d);
  for (Tensor p : net.params) p.set_grad(Tensor());
  const int64_t baseline = memory_stats(d).allocated_bytes;
  run_step(net, d);
  for (const Tensor& p : net.params) ASSERT_TRUE(p.grad().defined());
  const int64_t with_grads = memory_stats(d).allocated_bytes;
  EXPECT_GT(with_grads, baseline);
  EXPECT_GT(memory_stats(d).peak_allocated_bytes, with_grads);  // activations existed during the step
  run_step(net, d);                                             // accumulates into the same .grad buffers
  EXPECT_EQ(memory_stats(d).allocated_bytes, with_grads);
  for (Tensor p : net.params) p.set_grad(Tensor());
  EXPECT_EQ(memory_stats(d).allocated_bytes, baseline) << "activations or saved tensors leaked";
}

TEST(Memory, CpuStepReturnsToBaseline) { check_memory_returns_to_baseline(Device::cpu(), DType::f64); }

TEST(Memory, CudaStepReturnsToBaseline) {
  NSA_REQUIRE_GPU();
  check_memory_returns_to_baseline(Device::cuda(), DType::bf16);
  check_memory_returns_to_baseline(Device::cuda(), DType::f32);
}

TEST(Memory, CudaSteadyStateMakesNoCudaMalloc) {
  NSA_REQUIRE_GPU();
  test::TinyNet net(Device::cuda(), DType::bf16);
  run_step(net, Device::cuda());
  run_step(net, Device::cuda());
  const MemoryStats warm = memory_stats(Device::cuda());
  for (int i = 0; i < 3; ++i) run_step(net, Device::cuda());
  const MemoryStats after = memory_stats(Device::cuda());
  EXPECT_EQ(after.num_system_allocs, warm.num_system_allocs) << "cudaMalloc inside a warmed-up step";
  EXPECT_GT(after.num_allocs, warm.num_allocs);
  std::printf("[allocator] %lld allocations served from %lld cudaMalloc calls, peak %lld bytes\n",
              static_cast<long long>(after.num_allocs), static_cast<long long>(after.num_system_allocs),
              static_cast<long long>(after.peak_allocated_bytes));
}

TEST(Memory, CudaBlocksUsedOnAnotherStreamWaitForIt) {
  NSA_REQUIRE_GPU();
  cuda::Stream side = cuda::create_stream();
  const int64_t before = memory_stats(Device::cuda()).num_system_allocs;
  void* first = nullptr;
  {
    Tensor t = zeros({1 << 20}, DType::f32, Device::cuda());
    first = t.data_ptr();
    cuda::record_stream(t.data_ptr(), side);
  }
  // The block is pending on `side` until its event completes; after a sync it is reusable.
  cuda::synchronize_device();
  Tensor u = zeros({1 << 20}, DType::f32, Device::cuda());
  EXPECT_EQ(u.data_ptr(), first);
  EXPECT_LE(memory_stats(Device::cuda()).num_system_allocs, before + 1);
  cuda::destroy_stream(side);
}

TEST(Memory, CudaEmptyCacheReleasesUnusedBlocks) {
  NSA_REQUIRE_GPU();
  { Tensor t = zeros({1 << 22}, DType::f32, Device::cuda()); }
  const MemoryStats s = memory_stats(Device::cuda());
  EXPECT_GT(s.reserved_bytes, s.allocated_bytes);
  allocator_for(Device::cuda()).empty_cache();
  const MemoryStats e = memory_stats(Device::cuda());
  EXPECT_EQ(e.reserved_bytes, e.allocated_bytes);
}

}  // namespace
}  // namespace nsa
