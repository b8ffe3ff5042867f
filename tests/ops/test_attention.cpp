// The dense attention op (ops/attention.h): hand-computed values, a composed reference built from other
// ops (matmul + additive mask + softmax), f64 finite differences on the CPU, input checks, and CUDA
// (f32, bf16, f64) against the CPU reference computed in f64 on the same rounded inputs.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <string>

#include "ops/backend.h"       // check_device_errors
#include "ops/cpu/parallel.h"  // set_num_threads
#include "test_util.h"

namespace nsa::test {
namespace {

struct Shape {
  int64_t batch, seq, heads_q, heads_kv, dim_k, dim_v, window;
  double scale = 0.0;
  std::string str() const {
    char buf[96];
    std::snprintf(buf, sizeof(buf),
                  "B%" PRId64 "_T%" PRId64 "_Hq%" PRId64 "_Hkv%" PRId64 "_Dk%" PRId64 "_Dv%" PRId64
                  "_W%" PRId64,
                  batch, seq, heads_q, heads_kv, dim_k, dim_v, window);
    return buf;
  }
};

std::vector<Tensor> random_qkv(const Shape& s, DType dtype, Device device, uint64_t seed) {
  Generator gen(seed);
  return {randn({s.batch, s.seq, s.heads_q, s.dim_k}, dtype, device, &gen),
          randn({s.batch, s.seq, s.heads_kv, s.dim_k}, dtype, device, &gen),
          randn({s.batch, s.seq, s.heads_kv, s.dim_v}, dtype, device, &gen)};
}

// [B, T, H, D] → [B·H, T, D] (a copy), KV heads repeated to Hq heads as the op's grouping reads them.
Tensor heads_first(const Tensor& x, int64_t heads_q) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), d = x.size(3), g = heads_q / h;
  const Tensor repeated = reshape(expand(unsqueeze(x, 3), {b, t, h, g, d}), {b, t, heads_q, d});
  return reshape(contiguous(permute(repeated, {0, 2, 1, 3})), {b * heads_q, t, d});
}

// softmax(scale · q·kᵀ + mask)·v from existing differentiable ops (f64 only: the mask is -1e30).
Tensor composed_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int64_t window) {
  const int64_t b = q.size(0), t = q.size(1), hq = q.size(2), dv = v.size(3);
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  std::vector<double> bias(static_cast<size_t>(t * t));
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < t; ++j) bias[i * t + j] = (j <= i && (window == 0 || j > i - window)) ? 0 : -1e30;
  const Tensor scores = mul_scalar(matmul(heads_first(q, hq), heads_first(k, hq), false, true), scale);
  const Tensor probs = softmax(add(scores, from_vector<double>(bias, {t, t})), -1);
  const Tensor o = matmul(probs, heads_first(v, hq));  // [B·Hq, T, Dv]
  return permute(reshape(o, {b, hq, t, dv}), {0, 2, 1, 3});
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2e", v);
  return buf;
}

// ---- hand-computed values ----

TEST(Attention, HandComputedCausalAndWindow) {
  // One head, Dk = Dv = 1, scale 1. t = 0 sees only s = 0. t = 1: scores (q1·k0, q1·k1) = (0, ln 3),
  // probabilities (1/4, 3/4), so out1 = 4/4 + 3·8/4 = 7. Window 1: t = 1 sees only s = 1.
  const Tensor q = from_vector<double>({5.0, 1.0}, {1, 2, 1, 1});
  const Tensor k = from_vector<double>({0.0, std::log(3.0)}, {1, 2, 1, 1});
  const Tensor v = from_vector<double>({4.0, 8.0}, {1, 2, 1, 1});
  const std::vector<double> full = to_vector<double>(attention(q, k, v, 1.0));
  EXPECT_NEAR(full[0], 4.0, 1e-14);
  EXPECT_NEAR(full[1], 7.0, 1e-14);
  const std::vector<double> local = to_vector<double>(attention(q, k, v, 1.0, 1));
  EXPECT_NEAR(local[0], 4.0, 1e-14);
  EXPECT_NEAR(local[1], 8.0, 1e-14);
}

TEST(Attention, HandComputedGroupsAndDefaultScale) {
  // Hq = 2 query heads share one KV head; Dk = 4 so the default scale is 1/2. At t = 1, head 0 scores
  // (0, 0) → mean of v; head 1 has q·k1 = 2·ln 2 → scaled ln 2 → probabilities (1/3, 2/3).
  const double l = std::log(2.0);
  const Tensor q = from_vector<double>({0, 0, 0, 0, 0, 0, 0, 0,   // t = 0, heads 0 and 1
                                        0, 0, 0, 0, 2, 0, 0, 0},  // t = 1
                                       {1, 2, 2, 4});
  const Tensor k = from_vector<double>({0, 0, 0, 0, l, 0, 0, 0}, {1, 2, 1, 4});
  const Tensor v = from_vector<double>({3, 30, 6, 60}, {1, 2, 1, 2});   // Dv = 2
  const std::vector<double> o = to_vector<double>(attention(q, k, v));  // [1, 2, 2, 2]
  const std::vector<double> expected{3, 30, 3, 30, 4.5, 45, 5, 50};
  ASSERT_EQ(o.size(), expected.size());
  for (size_t i = 0; i < o.size(); ++i) EXPECT_NEAR(o[i], expected[i], 1e-13) << "element " << i;
}

// ---- f64 gradient checks and the composed reference (CPU) ----

class AttentionCpu : public ::testing::TestWithParam<Shape> {};

TEST_P(AttentionCpu, GradCheck) {
  const Shape s = GetParam();
  std::vector<Tensor> in = random_qkv(s, DType::f64, Device::cpu(), 3);
  for (Tensor& t : in) t.set_requires_grad(true);
  std::string report;
  const double err = gradcheck(
      [&](const std::vector<Tensor>& x) {
        return std::vector<Tensor>{attention(x[0], x[1], x[2], s.scale, s.window)};
      },
      in, &report);
  std::printf("[gradcheck] attention %s%s\n", s.str().c_str(), report.c_str());
  EXPECT_LT(err, 1e-6) << s.str() << report;
}

TEST_P(AttentionCpu, MatchesComposedReference) {
  const Shape s = GetParam();
  const std::vector<Tensor> base = random_qkv(s, DType::f64, Device::cpu(), 5);
  auto run = [&](bool composed) {
    std::vector<Tensor> x;
    for (const Tensor& t : base) x.push_back(detach(clone(t)).set_requires_grad(true));
    const Tensor out = composed ? composed_attention(x[0], x[1], x[2], s.scale, s.window)
                                : attention(x[0], x[1], x[2], s.scale, s.window);
    Generator gen(17);
    backward(sum(mul(out, randn(out.shape(), DType::f64, Device::cpu(), &gen))));
    return std::vector<Tensor>{contiguous(detach(out)), x[0].grad(), x[1].grad(), x[2].grad()};
  };
  const std::vector<Tensor> op = run(false), ref = run(true);
  std::string line = "[attention vs composed] " + s.str();
  const char* names[] = {"out", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i) {
    const double err = rel_error(op[i], ref[i]);
    line += std::string(" ") + names[i] + "=" + sci(err);
    EXPECT_LT(err, 1e-12) << s.str() << " " << names[i];
  }
  std::printf("%s\n", line.c_str());
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionCpu,
                         ::testing::Values(Shape{2, 1, 1, 1, 4, 4, 0},   // one position
                                           Shape{1, 5, 1, 1, 3, 3, 0},   // plain MHA
                                           Shape{2, 5, 4, 2, 4, 4, 1},   // GQA 2, window 1: attends to itself
                                           Shape{1, 17, 6, 2, 3, 3, 3},  // GQA 3, window 3
                                           Shape{1, 17, 8, 1, 2, 3, 0},  // GQA 8 (one KV head), Dk ≠ Dv
                                           Shape{1, 17, 4, 2, 5, 2, 0, 0.7},  // explicit scale, Dv < Dk
                                           Shape{2, 17, 4, 2, 2, 2, 3}),      // windowed, batched
                         [](const ::testing::TestParamInfo<Shape>& info) { return info.param.str(); });

TEST(Attention, NonContiguousInputsAndEmptySequence) {
  const Shape s{1, 6, 4, 2, 3, 3, 0};
  const std::vector<Tensor> in = random_qkv(s, DType::f64, Device::cpu(), 8);
  // q stored as [B, Hq, T, Dk] and viewed as [B, T, Hq, Dk]: the op must read the strides.
  const Tensor q_store = contiguous(permute(in[0], {0, 2, 1, 3})).set_requires_grad(true);
  const Tensor q_view = permute(q_store, {0, 2, 1, 3});
  ASSERT_FALSE(q_view.is_contiguous());
  const Tensor out = attention(q_view, in[1], in[2]);
  EXPECT_LT(rel_error(out, attention(in[0], in[1], in[2])), 1e-15);
  backward(sum(out));
  const Tensor dq = q_store.grad();
  ASSERT_TRUE(dq.defined());
  EXPECT_EQ(dq.shape(), q_store.shape());

  // T = 0: an empty output, and zero-size gradients.
  Tensor q0 = zeros({2, 0, 4, 3}, DType::f64).set_requires_grad(true);
  const Tensor o0 = attention(q0, zeros({2, 0, 2, 3}, DType::f64), zeros({2, 0, 2, 5}, DType::f64));
  EXPECT_EQ(o0.shape(), (Dims{2, 0, 4, 5}));
}

TEST(Attention, RejectsBadInputs) {
  const Tensor q = zeros({1, 4, 4, 8}), k = zeros({1, 4, 2, 8}), v = zeros({1, 4, 2, 8});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::vector<std::pair<std::string, std::string>> cases{
      {message([&] {
         attention(reshape(q, {4, 4, 8}), k, v);
       }),
       "expected q [B, T, Hq, Dk]"},
      {message([&] {
         attention(q, zeros({1, 4, 3, 8}), zeros({1, 4, 3, 8}));
       }),
       "multiple of the KV heads"},
      {message([&] {
         attention(q, zeros({1, 5, 2, 8}), v);
       }),
       "expected k of shape"},
      {message([&] {
         attention(q, zeros({1, 4, 2, 6}), v);
       }),
       "expected k of shape"},
      {message([&] {
         attention(q, k, zeros({1, 4, 1, 8}));
       }),
       "expected v of shape"},
      {message([&] {
         attention(q, k, zeros({1, 4, 2, 8}, DType::f64));
       }),
       "dtypes differ"},
      {message([&] {
         attention(q, k, zeros({1, 4, 2, 8}, DType::i64));
       }),
       "expected a floating v"},
      {message([&] { attention(q, k, v, 0.0, -1); }), "expected window >= 0"},
      {message([&] { attention(q, k, v, NAN); }), "expected a finite scale"},
      {message([&] {
         attention(zeros({1, 4, 4, 0}), zeros({1, 4, 2, 0}), v);
       }),
       "key head dim > 0"},
  };
  for (const auto& [got, want] : cases) {
    EXPECT_NE(got.find("[attention]"), std::string::npos) << got;
    EXPECT_NE(got.find(want), std::string::npos) << "expected '" << want << "' in: " << got;
  }
}

// The CPU backend splits (batch, head) pairs over its thread pool: the bits must not depend on the split.
TEST(Attention, CpuSameBitsForAnyThreadCount) {
  const Shape s{3, 64, 4, 2, 16, 16, 0};  // a task of this size is worth a thread (see the grain)
  const std::vector<Tensor> base = random_qkv(s, DType::f32, Device::cpu(), 12);
  auto run = [&](int threads) {
    cpu::set_num_threads(threads);
    std::vector<Tensor> x;
    for (const Tensor& t : base) x.push_back(detach(clone(t)).set_requires_grad(true));
    const Tensor out = attention(x[0], x[1], x[2]);
    backward(sum(mul(out, out)));
    return std::vector<Tensor>{out, x[0].grad(), x[1].grad(), x[2].grad()};
  };
  const int initial = cpu::num_threads();
  const std::vector<Tensor> one = run(1), three = run(3);
  cpu::set_num_threads(initial);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(equal_values(one[i], three[i])) << "output/gradient " << i;
}

// The tiny training config runs this on the CPU every step (B 8, T 256, Hq 4, Hkv 2, D 32): time it.
TEST(Attention, CpuTimeOfTheTinyConfig) {
  const Shape s{8, 256, 4, 2, 32, 32, 0};
  std::vector<Tensor> in = random_qkv(s, DType::f32, Device::cpu(), 9);
  for (Tensor& t : in) t.set_requires_grad(true);
  const auto start = std::chrono::steady_clock::now();
  const Tensor out = attention(in[0], in[1], in[2]);
  const auto mid = std::chrono::steady_clock::now();
  backward(sum(out));
  const auto end = std::chrono::steady_clock::now();
  const double fwd = std::chrono::duration<double, std::milli>(mid - start).count();
  const double bwd = std::chrono::duration<double, std::milli>(end - mid).count();
  std::printf("[attention cpu] %s f32: forward %.1f ms, backward %.1f ms\n", s.str().c_str(), fwd, bwd);
  EXPECT_TRUE(std::isfinite(item(sum(in[2].grad()))));
}

// ---- CUDA against the CPU reference ----

// Tolerances (norm-wise relative): f32 1e-5 (f32 scores and accumulation, rows of up to 257 terms, GEMM
// sums of up to 16·257); bf16 1e-2 (inputs of the reference are the same rounded values; the scores,
// probabilities and dS are rounded to bf16 between steps, ~2^-9 each); f64 1e-11.
class AttentionCuda : public ::testing::TestWithParam<std::tuple<Shape, DType>> {};

TEST_P(AttentionCuda, MatchesCpuReference) {
  NSA_REQUIRE_GPU();
  const auto [s, dtype] = GetParam();
  const double tol = dtype == DType::bf16 ? 1e-2 : dtype == DType::f32 ? 1e-5 : 1e-11;
  const Device gpu = Device::cuda(0);
  std::vector<Tensor> dev = random_qkv(s, dtype, gpu, 21);
  std::vector<Tensor> ref;
  for (Tensor& t : dev) {
    ref.push_back(to(to(t, Device::cpu()), DType::f64).set_requires_grad(true));
    t.set_requires_grad(true);
  }
  Generator gen(23);
  const Tensor w = to(randn({s.batch, s.seq, s.heads_q, s.dim_v}, DType::f32, Device::cpu(), &gen), dtype);

  const Tensor ref_out = attention(ref[0], ref[1], ref[2], s.scale, s.window);
  backward(sum(mul(ref_out, to(w, DType::f64))));
  const Tensor dev_out = attention(dev[0], dev[1], dev[2], s.scale, s.window);
  ASSERT_EQ(dev_out.device(), gpu);
  ASSERT_EQ(dev_out.dtype(), dtype);
  backward(sum(mul(dev_out, to(w, gpu))));
  check_device_errors(gpu);

  const std::vector<std::pair<const char*, std::pair<Tensor, Tensor>>> pairs{
      {"out", {dev_out, ref_out}},
      {"dq", {dev[0].grad(), ref[0].grad()}},
      {"dk", {dev[1].grad(), ref[1].grad()}},
      {"dv", {dev[2].grad(), ref[2].grad()}}};
  std::string line = "[attention cuda-vs-cpu] " + s.str() + " " + dtype_name(dtype);
  for (const auto& [name, ab] : pairs) {
    ASSERT_TRUE(ab.first.defined()) << name << " missing";
    const double err = rel_error(ab.first, ab.second);
    const auto [worst, at] = max_abs_error(ab.first, ab.second);
    line += std::string(" ") + name + "=" + sci(err);
    EXPECT_LT(err, tol) << s.str() << " " << name << ": max abs error " << worst << " at flat index " << at;
  }
  std::printf("%s (tol %.0e)\n", line.c_str(), tol);
}

std::vector<std::tuple<Shape, DType>> cuda_cases() {
  // Ragged T (1, 33, 100, 257), groups 1, 2, 4, 16, head dims 64 and 128, windows 0 and 64.
  const std::vector<Shape> shapes{
      {2, 1, 4, 4, 64, 64, 0},    {2, 33, 4, 2, 64, 64, 0},     {1, 100, 8, 2, 128, 128, 0},
      {2, 100, 4, 1, 64, 64, 64}, {1, 257, 16, 1, 64, 64, 0},   {1, 257, 4, 4, 128, 128, 64},
      {1, 257, 8, 2, 128, 64, 0}, {1, 33, 16, 1, 128, 128, 64},
  };
  std::vector<std::tuple<Shape, DType>> v;
  for (const Shape& s : shapes)
    for (DType d : {DType::f32, DType::bf16}) v.emplace_back(s, d);
  v.emplace_back(shapes[1], DType::f64);
  v.emplace_back(shapes[3], DType::f64);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionCuda, ::testing::ValuesIn(cuda_cases()),
                         [](const ::testing::TestParamInfo<std::tuple<Shape, DType>>& info) {
                           return std::get<0>(info.param).str() + "_" + dtype_name(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace nsa::test
