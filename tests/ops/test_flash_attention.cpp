// The fused flash attention kernels (kernels/attention/flash_attention.h), which the CUDA backend uses for
// bf16 with Dk = Dv ∈ {64, 128}: the Hopper group-row wgmma kernels (group_attention.h) and the mma.sync
// kernels, each comparison run under both choices. Called through the backend primitives so that lse is
// checked too:
//  - against the CPU reference in f64 on the same bf16-rounded inputs, at ragged lengths (1, 17, 64, 65,
//    200, 1000), groups 1, 4, 16, head dims 64 and 128, windows 0, 1, 64, 100;
//  - against the materialized CUDA path in f32 at longer sequences (T = 2048, 1536), windows 0 and 512;
//  - backward bit-identical over two runs; outputs poisoned with NaN first, so an unwritten element fails;
//  - a misaligned view falls back to the materialized path and agrees.
// Tolerances (‖a − b‖ / ‖b‖): out, dq, dk, dv 1e-2 (bf16 operands; P and dS are rounded to bf16 before
// their products, ~2^-9 relative each, over sums of up to 1000 keys · 16 heads); lse 1e-4 (f32 sums of
// exact bf16 products, no bf16 rounding on its path).
#include <cinttypes>
#include <cmath>
#include <string>

#include "ops/backend.h"
#include "test_util.h"
#ifdef NSA_WITH_CUDA
#include "kernels/attention/flash_attention.h"
#include "kernels/nsa/nsa.h"  // set_wide_backward_rows
#endif

namespace nsa::test {
namespace {

struct FlashCase {
  int64_t batch, seq, heads_q, heads_kv, dim, window;
  double scale = 0.0;  // 0: 1/sqrt(dim)
  double resolved_scale() const { return scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(dim)); }
  std::string str() const {
    char buf[112];
    std::snprintf(buf, sizeof(buf),
                  "B%" PRId64 "_T%" PRId64 "_Hq%" PRId64 "_Hkv%" PRId64 "_D%" PRId64 "_W%" PRId64 "%s", batch,
                  seq, heads_q, heads_kv, dim, window, scale != 0.0 ? "_scaled" : "");
    return buf;
  }
};

struct Inputs {
  Tensor q, k, v, dout;
};

Inputs random_inputs(const FlashCase& c, DType dtype, Device device, uint64_t seed) {
  Generator gen(seed);
  return {randn({c.batch, c.seq, c.heads_q, c.dim}, dtype, device, &gen),
          randn({c.batch, c.seq, c.heads_kv, c.dim}, dtype, device, &gen),
          randn({c.batch, c.seq, c.heads_kv, c.dim}, dtype, device, &gen),
          randn({c.batch, c.seq, c.heads_q, c.dim}, dtype, device, &gen)};
}

Inputs convert(const Inputs& in, Device device, DType dtype) {
  return {to(in.q, device, dtype), to(in.k, device, dtype), to(in.v, device, dtype),
          to(in.dout, device, dtype)};
}

struct Outputs {
  Tensor out, lse, dq, dk, dv;
};

// Backend forward then backward on the inputs' device, every output poisoned with NaN beforehand.
Outputs run_backend(const Inputs& in, double scale, int64_t window) {
  const Device dev = in.q.device();
  const DType dtype = in.q.dtype();
  const Dims& qs = in.q.shape();
  auto poisoned = [&](const Dims& shape, DType t) {
    Tensor x = empty(shape, t, dev);
    fill_(x, NAN);
    return x;
  };
  Outputs o;
  o.out = poisoned(qs, dtype);
  o.lse = poisoned({qs[0], qs[2], qs[1]}, dtype == DType::f64 ? DType::f64 : DType::f32);
  o.dq = poisoned(qs, dtype);
  o.dk = poisoned(in.k.shape(), dtype);
  o.dv = poisoned(in.v.shape(), dtype);
  Backend& be = backend_for(dev);
  be.attention_forward(o.out, o.lse, in.q, in.k, in.v, scale, window);
  be.attention_backward(o.dq, o.dk, o.dv, in.dout, in.q, in.k, in.v, o.out, o.lse, scale, window);
  check_device_errors(dev);
  return o;
}

// The kernels the launchers may choose (flash_attention.h): automatic takes the Hopper group-row wgmma
// kernels where they apply (contiguous operands on an sm_90a device), mma_sync the FlashAttention-2 kernels
// everywhere. Every GPU comparison below runs under both; on other devices both are the mma.sync kernels.
#ifdef NSA_WITH_CUDA
// "auto, wide": the Hopper kernels' backward with two warpgroups per program, which long sequences take
// (kernels/nsa/nsa.h set_wide_backward_rows), forced at these sizes, and their forward with the warpgroups in
// lockstep (set_group_forward_sync) instead of the default mbarrier ring.
enum class FlashKernel { automatic, automatic_wide, mma_sync };
const FlashKernel kChoices[] = {FlashKernel::automatic, FlashKernel::automatic_wide, FlashKernel::mma_sync};
const char* choice_name(FlashKernel k) {
  return k == FlashKernel::automatic ? "auto"
                                     : (k == FlashKernel::automatic_wide ? "auto,wide,lockstep" : "mma.sync");
}
struct KernelChoice {
  explicit KernelChoice(FlashKernel k) {
    kernels::set_flash_kernel(k == FlashKernel::mma_sync ? kernels::FlashKernel::mma_sync
                                                         : kernels::FlashKernel::automatic);
    kernels::set_wide_backward_rows(k == FlashKernel::automatic_wide ? 0 : -1);
    kernels::set_group_forward_sync(k == FlashKernel::automatic_wide ? kernels::GroupForwardSync::lockstep
                                                                     : kernels::GroupForwardSync::automatic);
  }
  ~KernelChoice() {
    kernels::set_flash_kernel(kernels::FlashKernel::automatic);
    kernels::set_wide_backward_rows(-1);
    kernels::set_group_forward_sync(kernels::GroupForwardSync::automatic);
  }
};
#else
enum class FlashKernel { automatic };
const FlashKernel kChoices[] = {FlashKernel::automatic};
const char* choice_name(FlashKernel) { return "auto"; }
struct KernelChoice {
  explicit KernelChoice(FlashKernel) {}
};
#endif

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2e", v);
  return buf;
}

// Compares every output (lse against lse_tol, the others against tol) and prints one line of relative errors.
void expect_close(const Outputs& got, const Outputs& ref, const std::string& what, double tol,
                  double lse_tol) {
  const std::pair<const char*, std::pair<const Tensor*, const Tensor*>> pairs[] = {
      {"out", {&got.out, &ref.out}},
      {"lse", {&got.lse, &ref.lse}},
      {"dq", {&got.dq, &ref.dq}},
      {"dk", {&got.dk, &ref.dk}},
      {"dv", {&got.dv, &ref.dv}}};
  std::string line = "[flash attention] " + what;
  for (const auto& [name, ab] : pairs) {
    const double err = rel_error(*ab.first, *ab.second);
    const auto [worst, at] = max_abs_error(*ab.first, *ab.second);
    line += std::string(" ") + name + "=" + sci(err);
    const double bound = std::string(name) == "lse" ? lse_tol : tol;
    EXPECT_LT(err, bound) << what << " " << name << ": max abs error " << worst << " at flat index " << at;
  }
  std::printf("%s\n", line.c_str());
}

// ---- bf16 flash against the f64 CPU reference ----

class FlashVsCpu : public ::testing::TestWithParam<FlashCase> {};

TEST_P(FlashVsCpu, MatchesReference) {
  NSA_REQUIRE_GPU();
  const FlashCase c = GetParam();
  const Inputs dev = random_inputs(c, DType::bf16, Device::cuda(0), 31);
  const Outputs ref = run_backend(convert(dev, Device::cpu(), DType::f64), c.resolved_scale(), c.window);
  for (FlashKernel k : kChoices) {
    const KernelChoice choice(k);
    const Outputs got = run_backend(dev, c.resolved_scale(), c.window);
    expect_close(got, ref, c.str() + " " + choice_name(k) + " vs cpu f64", 1e-2, 1e-4);
  }
}

std::vector<FlashCase> cpu_cases() {
  // Every length meets every group size, both head dims and, across the groups, all four windows.
  const int64_t seqs[] = {1, 17, 64, 65, 200, 1000};
  const std::pair<int64_t, int64_t> heads[] = {{4, 4}, {8, 2}, {16, 1}};
  const int64_t windows[] = {0, 1, 64, 100};
  std::vector<FlashCase> v;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 3; ++j) {
      const int64_t batch = seqs[i] < 1000 ? 2 : 1;
      v.push_back({batch, seqs[i], heads[j].first, heads[j].second, 64, windows[(i + j) % 4]});
      v.push_back({batch, seqs[i], heads[j].first, heads[j].second, 128, windows[(i + j + 2) % 4]});
    }
  v.push_back({1, 100, 8, 2, 64, 0, 0.05});    // explicit small scale
  v.push_back({1, 100, 4, 4, 128, 30, -0.2});  // a negative scale flips which score is the max
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlashVsCpu, ::testing::ValuesIn(cpu_cases()),
                         [](const ::testing::TestParamInfo<FlashCase>& info) { return info.param.str(); });

// ---- bf16 flash against the materialized CUDA path in f32 (longer sequences) ----

class FlashVsMaterialized : public ::testing::TestWithParam<FlashCase> {};

TEST_P(FlashVsMaterialized, MatchesF32Path) {
  NSA_REQUIRE_GPU();
  const FlashCase c = GetParam();
  const Inputs dev = random_inputs(c, DType::bf16, Device::cuda(0), 41);
  const Outputs ref = run_backend(convert(dev, Device::cuda(0), DType::f32), c.resolved_scale(), c.window);
  for (FlashKernel k : kChoices) {
    const KernelChoice choice(k);
    const Outputs got = run_backend(dev, c.resolved_scale(), c.window);
    expect_close(got, ref, c.str() + " " + choice_name(k) + " vs cuda f32", 1e-2, 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlashVsMaterialized,
                         ::testing::Values(FlashCase{1, 2048, 8, 2, 128, 0},
                                           FlashCase{1, 2048, 8, 2, 128, 512},
                                           FlashCase{2, 1536, 6, 2, 64, 0},
                                           FlashCase{1, 1536, 16, 1, 64, 512},
                                           FlashCase{1, 1999, 4, 4, 128, 777}),
                         [](const ::testing::TestParamInfo<FlashCase>& info) { return info.param.str(); });

// ---- determinism ----

TEST(FlashAttention, BackwardIsBitIdenticalAcrossRuns) {
  NSA_REQUIRE_GPU();
  for (const FlashCase& c : {FlashCase{1, 1000, 16, 1, 128, 0}, FlashCase{2, 333, 8, 2, 64, 100}})
    for (FlashKernel k : kChoices) {
      const KernelChoice choice(k);
      const Inputs dev = random_inputs(c, DType::bf16, Device::cuda(0), 51);
      const Outputs a = run_backend(dev, c.resolved_scale(), c.window);
      const Outputs b = run_backend(dev, c.resolved_scale(), c.window);
      EXPECT_TRUE(equal_values(a.out, b.out)) << c.str() << " out";
      EXPECT_TRUE(equal_values(a.lse, b.lse)) << c.str() << " lse";
      EXPECT_TRUE(equal_values(a.dq, b.dq)) << c.str() << " dq";
      EXPECT_TRUE(equal_values(a.dk, b.dk)) << c.str() << " dk";
      EXPECT_TRUE(equal_values(a.dv, b.dv)) << c.str() << " dv";
      // A different upstream gradient must change the result (the comparison above is not vacuous).
      Inputs other = dev;
      other.dout = mul_scalar(dev.dout, 2.0);
      const Outputs d = run_backend(other, c.resolved_scale(), c.window);
      EXPECT_FALSE(equal_values(a.dq, d.dq)) << c.str();
      std::printf("[flash attention] %s %s: backward bit-identical over two runs\n", c.str().c_str(),
                  choice_name(k));
    }
}

// ---- the op front end: a misaligned contiguous view takes the materialized path ----

TEST(FlashAttention, MisalignedViewFallsBackAndAgrees) {
  NSA_REQUIRE_GPU();
  const FlashCase c{1, 77, 4, 2, 64, 0};
  const Inputs dev = random_inputs(c, DType::bf16, Device::cuda(0), 61);
  // The same q values one element into a larger buffer: contiguous, but 2 bytes off 16-byte alignment.
  const int64_t n = dev.q.numel();
  Tensor buffer = empty({n + 1}, DType::bf16, Device::cuda(0));
  const Tensor q_shifted = reshape(narrow(buffer, 0, 1, n), dev.q.shape());
  copy_(q_shifted, dev.q);
  ASSERT_TRUE(q_shifted.is_contiguous());
  ASSERT_NE(reinterpret_cast<uintptr_t>(q_shifted.data_ptr()) % 16, 0u);
  const Tensor flash = attention(dev.q, dev.k, dev.v);
  const Tensor fallback = attention(q_shifted, dev.k, dev.v);
  const double err = rel_error(fallback, flash);
  std::printf("[flash attention] misaligned fallback vs flash %s out=%s\n", c.str().c_str(),
              sci(err).c_str());
  EXPECT_LT(err, 1e-2);
  EXPECT_FALSE(equal_values(fallback, flash));  // two different paths: bf16 roundings differ somewhere
}

}  // namespace
}  // namespace nsa::test
