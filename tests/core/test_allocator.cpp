// Memory: every tensor of a training step is freed once its backward has run (memory returns to the
// baseline), and on CUDA the caching allocator stops calling cudaMalloc once the step has warmed it.
#include "core/allocator.h"
#include "test_util.h"

namespace nsa {
namespace {

// A tiny language-model step touching most ops: embedding, RMSNorm, RoPE, SwiGLU, matmuls, softmax,
// cross-entropy.
struct TinyNet {
  std::vector<Tensor> params;
  TinyNet(Device d, DType dt) {
    Generator g(5);
    for (Dims s : {Dims{50, 32}, Dims{32}, Dims{64, 32}, Dims{64, 32}, Dims{32, 64}, Dims{50, 32}}) {
      Tensor p = to(randn(s, DType::f32, Device::cpu(), &g) * 0.1, d, dt);
      params.push_back(detach(p).set_requires_grad(true));
    }
  }
  Tensor loss(const Tensor& ids, const Tensor& targets, const Tensor& pos) const {
    Tensor x = embedding(params[0], ids);  // [B, T, 32]
    x = rms_norm(x, params[1]);
    Tensor q = rope(reshape(x, {2, 8, 4, 8}), pos);  // 4 heads of 8
    Tensor att = softmax(matmul(reshape(q, {2, 8, 32}), reshape(x, {2, 8, 32}), false, true), -1);
    x = add(x, matmul(att, x));
    Tensor h = swiglu(linear(x, params[2]), linear(x, params[3]));
    x = add(x, linear(h, params[4]));
    return cross_entropy(linear(x, params[5]), targets);
  }
};

void run_step(const TinyNet& net, Device d) {
  Tensor ids = from_vector<int64_t>(std::vector<int64_t>(16, 3), {2, 8}, DType::i64, d);
  Tensor tg = from_vector<int64_t>(std::vector<int64_t>(16, 7), {2, 8}, DType::i64, d);
  std::vector<int64_t> p(16);
  for (int i = 0; i < 16; ++i) p[i] = i % 8;
  Tensor pos = from_vector<int64_t>(p, {16}, DType::i64, d);
  Tensor loss = net.loss(ids, tg, pos);
  backward(loss);
}

void check_memory_returns_to_baseline(Device d, DType dt) {
  TinyNet net(d, dt);
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

TEST(Memory, CpuStepReturnsToBaseline) {
  check_memory_returns_to_baseline(Device::cpu(), DType::f64);
}

TEST(Memory, CudaStepReturnsToBaseline) {
  NSA_REQUIRE_GPU();
  check_memory_returns_to_baseline(Device::cuda(), DType::bf16);
  check_memory_returns_to_baseline(Device::cuda(), DType::f32);
}

TEST(Memory, CudaSteadyStateMakesNoCudaMalloc) {
  NSA_REQUIRE_GPU();
  TinyNet net(Device::cuda(), DType::bf16);
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
