// The optimizer layer: AdamW against the textbook formulas written out in double, weight decay per param,
// grad_scale, zero_grad, checkpoint state round trips, the global grad norm and clip coefficient, the
// learning-rate schedules, the no-decay rules; CUDA against the CPU reference (skipped without a GPU).
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include "optim/optim.h"
#include "test_util.h"

namespace nsa {
namespace {

using test::rel_error;

std::vector<float> random_values(int64_t n, std::mt19937& rng, double scale = 1.0) {
  std::normal_distribution<float> dist(0.0f, static_cast<float>(scale));
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor tensor_of(const std::vector<float>& values, Device device = Device::cpu()) {
  return from_vector(values, {static_cast<int64_t>(values.size())}, DType::f32, device);
}

OptimizerConfig test_config() {
  OptimizerConfig c;
  c.lr = 1e-2;
  c.beta1 = 0.9;
  c.beta2 = 0.95;
  c.eps = 1e-8;
  c.weight_decay = 0.1;
  return c;
}

// One parameter's state as the reference keeps it: f32 storage like the optimizer's.
struct RefParam {
  std::vector<float> p, m, v;
  bool decay;
};

// AdamW as in Loshchilov & Hutter / torch.optim.AdamW, in textbook form: m̂ = m/(1−β1^t), v̂ = v/(1−β2^t),
// p ← p − lr·wd·p − lr·m̂/(sqrt(v̂) + eps). Double arithmetic, f32 storage.
void reference_step(RefParam& r, const std::vector<float>& grad, double scale, double lr,
                    const OptimizerConfig& c, int64_t t) {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
  for (size_t i = 0; i < r.p.size(); ++i) {
    const double g = static_cast<double>(grad[i]) * scale;
    const double m = c.beta1 * r.m[i] + (1.0 - c.beta1) * g;
    const double v = c.beta2 * r.v[i] + (1.0 - c.beta2) * g * g;
    const double p = r.p[i];
    const double decayed = r.decay ? p - lr * c.weight_decay * p : p;
    r.p[i] = static_cast<float>(decayed - lr * (m / bc1) / (std::sqrt(v / bc2) + c.eps));
    r.m[i] = static_cast<float>(m);
    r.v[i] = static_cast<float>(v);
  }
}

TEST(AdamW, MatchesReferenceOverThreeSteps) {
  std::mt19937 rng(7);
  const OptimizerConfig c = test_config();
  const std::vector<int64_t> sizes = {1, 33, 1031};
  std::vector<RefParam> ref;
  std::vector<OptimParam> params;
  for (size_t k = 0; k < sizes.size(); ++k) {
    ref.push_back(
        {random_values(sizes[k], rng), std::vector<float>(sizes[k]), std::vector<float>(sizes[k]), k != 1});
    params.push_back({str("p", k), tensor_of(ref.back().p).set_requires_grad(true), ref.back().decay});
  }
  AdamW opt(params, c);
  const double scale = static_cast<float>(0.37);  // the optimizer reads it from an f32 tensor
  const std::vector<double> lrs = {1e-2, 3e-3, 5e-2};
  for (int step = 0; step < 3; ++step) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      const std::vector<float> g = random_values(sizes[k], rng, 0.1);
      params[k].param.set_grad(tensor_of(g));
      reference_step(ref[k], g, scale, lrs[step], c, step + 1);
    }
    opt.step(lrs[step], full({}, scale));
  }
  EXPECT_EQ(opt.step_count(), 3);
  const auto state = opt.state();
  for (size_t k = 0; k < sizes.size(); ++k) {
    const double ep = rel_error(params[k].param, tensor_of(ref[k].p));
    const double em = rel_error(state[2 * k].second, tensor_of(ref[k].m));
    const double ev = rel_error(state[2 * k + 1].second, tensor_of(ref[k].v));
    std::printf("param %zu (n=%lld): rel error p %.2e, m %.2e, v %.2e\n", k, static_cast<long long>(sizes[k]),
                ep, em, ev);
    EXPECT_LT(ep, 1e-7);
    EXPECT_LT(em, 1e-7);
    EXPECT_LT(ev, 1e-7);
  }
}

// With zero gradients the moments stay 0 and the update term is 0/(0 + eps): only the decay moves p.
TEST(AdamW, WeightDecayOnlyForDecayParams) {
  Tensor a = tensor_of({1.0f, -2.0f, 4.0f}), b = tensor_of({1.0f, -2.0f, 4.0f});
  a.set_grad(zeros({3}));
  b.set_grad(zeros({3}));
  OptimizerConfig c = test_config();
  c.weight_decay = 0.5;
  AdamW opt({{"w", a, true}, {"norm.weight", b, false}}, c);
  opt.step(0.1);
  const std::vector<float> expected = {0.95f, -1.9f, 3.8f};  // p · (1 − 0.1 · 0.5)
  EXPECT_EQ(to_vector<float>(a), expected);
  EXPECT_EQ(to_vector<float>(b), (std::vector<float>{1.0f, -2.0f, 4.0f}));
}

// grad_scale multiplies the gradient: scale 0.25 on g equals scale 1 on g/4 (exact in binary), and scale 0
// leaves only the decay.
TEST(AdamW, GradScaleApplied) {
  std::mt19937 rng(3);
  const std::vector<float> p0 = random_values(40, rng), g = random_values(40, rng);
  std::vector<float> g_quarter = g;
  for (float& x : g_quarter) x *= 0.25f;
  Tensor a = tensor_of(p0), b = tensor_of(p0), z = tensor_of(p0);
  a.set_grad(tensor_of(g));
  b.set_grad(tensor_of(g_quarter));
  z.set_grad(tensor_of(g));
  AdamW scaled({{"a", a, false}}, test_config()), plain({{"b", b, false}}, test_config());
  AdamW zeroed({{"z", z, false}}, test_config());
  scaled.step(1e-2, full({}, 0.25));
  plain.step(1e-2);
  zeroed.step(1e-2, zeros({}));
  EXPECT_TRUE(test::equal_values(a, b));
  EXPECT_FALSE(test::equal_values(a, tensor_of(p0)));
  EXPECT_TRUE(test::equal_values(z, tensor_of(p0)));
}

TEST(AdamW, ParamsWithoutGradAreSkipped) {
  Tensor a = tensor_of({1.0f, 2.0f}), b = tensor_of({3.0f, 4.0f});
  a.set_grad(tensor_of({0.5f, -0.5f}));
  AdamW opt({{"a", a, true}, {"b", b, true}}, test_config());
  opt.step(1e-2);
  EXPECT_NE(to_vector<float>(a), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(to_vector<float>(b), (std::vector<float>{3.0f, 4.0f}));  // no decay either
  EXPECT_EQ(to_vector<float>(opt.state()[3].second), (std::vector<float>{0.0f, 0.0f}));
}

TEST(AdamW, ZeroGrad) {
  Tensor a = tensor_of({1.0f, 2.0f}).set_requires_grad(true);
  AdamW opt({{"a", a, true}}, test_config());
  backward(sum(square(a)));
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(to_vector<float>(a.grad()), (std::vector<float>{2.0f, 4.0f}));
  opt.zero_grad(/*set_to_none=*/false);
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(to_vector<float>(a.grad()), (std::vector<float>{0.0f, 0.0f}));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_EQ(opt.grads().size(), 1u);
  EXPECT_FALSE(opt.grads()[0].defined());
}

// The trainer's loop on a quadratic: backward, norm, clip, step, zero_grad; the loss must fall.
TEST(AdamW, TrainingLoopReducesLoss) {
  std::mt19937 rng(11);
  Tensor w = tensor_of(random_values(16, rng)).set_requires_grad(true);
  AdamW opt({{"w", w, false}}, test_config());
  double first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    const Tensor loss = sum(square(w));
    if (step == 0) first = item(loss);
    last = item(loss);
    backward(loss);
    const std::vector<Tensor> grads = opt.grads();
    const Tensor scale = clip_coefficient(global_grad_norm(grads), 1.0);
    opt.step(5e-2, scale);
    opt.zero_grad();
  }
  std::printf("loss %.4f -> %.4f\n", first, last);
  EXPECT_LT(last, 0.2 * first);
}

TEST(AdamW, RejectsBadInput) {
  Tensor a = tensor_of({1.0f}), b = tensor_of({2.0f});
  EXPECT_THROW(AdamW({{"a", a, true}, {"a", b, true}}, test_config()), Error);     // duplicate name
  EXPECT_THROW(AdamW({{"a", a, true}, {"tied", a, true}}, test_config()), Error);  // one tensor twice
  EXPECT_THROW(AdamW({{"a", zeros({2}, DType::f64), true}}, test_config()), Error);
  EXPECT_THROW(AdamW({{"a", transpose(zeros({2, 3}), 0, 1), true}}, test_config()), Error);
  OptimizerConfig c = test_config();
  c.beta2 = 1.0;
  EXPECT_THROW(AdamW({{"a", a, true}}, c), InputError);
  AdamW opt({{"a", a, true}}, test_config());
  a.set_grad(tensor_of({1.0f}));
  EXPECT_THROW(opt.step(1e-2, full({2}, 1.0)), Error);             // two values
  EXPECT_THROW(opt.step(1e-2, full({}, 1.0, DType::f64)), Error);  // f64
}

// Runs `steps` AdamW steps over params with fixed per-step gradients drawn from `seed`.
void run_steps(AdamW& opt, int first_step, int last_step, uint32_t seed) {
  for (int step = first_step; step < last_step; ++step) {
    std::mt19937 rng(seed + step);
    for (const OptimParam& p : opt.params()) {
      Tensor param = p.param;  // a handle to the same tensor
      param.set_grad(to(tensor_of(random_values(param.numel(), rng)), param.device()));
    }
    opt.step(1e-2 * (1 + step), full({}, 0.8, DType::f32, opt.params().front().param.device()));
  }
}

std::vector<OptimParam> make_params(std::mt19937& rng, Device device) {
  return {{"embed.weight", tensor_of(random_values(24, rng), device), false},
          {"blocks.0.w", tensor_of(random_values(37, rng), device), true},
          {"blocks.0.norm.weight", tensor_of(random_values(5, rng), device), false}};
}

// state() after 2 steps, loaded into a fresh optimizer over copies of the params, continues bit-exactly
// like an uninterrupted 5-step run. On CUDA the checkpoint goes through host tensors.
void check_resume(Device device) {
  std::mt19937 rng_a(5), rng_b(5);
  std::vector<OptimParam> straight = make_params(rng_a, device), first_half = make_params(rng_b, device);
  AdamW uninterrupted(straight, test_config());
  run_steps(uninterrupted, 0, 5, 100);

  AdamW before(first_half, test_config());
  run_steps(before, 0, 2, 100);
  std::vector<std::pair<std::string, Tensor>> saved;
  for (const auto& [name, t] : before.state())
    saved.emplace_back(name, to(t, Device::cpu()));  // a copy on CPU
  EXPECT_EQ(saved.size(), 6u);
  EXPECT_EQ(saved[0].first, "exp_avg/embed.weight");
  EXPECT_EQ(saved[1].first, "exp_avg_sq/embed.weight");
  std::vector<OptimParam> resumed_params;
  for (const OptimParam& p : first_half) resumed_params.push_back({p.name, clone(p.param), p.decay});
  AdamW resumed(resumed_params, test_config());
  resumed.load_state(saved, before.step_count());
  EXPECT_EQ(resumed.step_count(), 2);
  run_steps(resumed, 2, 5, 100);
  for (size_t k = 0; k < straight.size(); ++k) {
    EXPECT_TRUE(test::equal_values(resumed_params[k].param, straight[k].param)) << straight[k].name;
    EXPECT_TRUE(test::equal_values(resumed.state()[2 * k].second, uninterrupted.state()[2 * k].second));
    EXPECT_TRUE(
        test::equal_values(resumed.state()[2 * k + 1].second, uninterrupted.state()[2 * k + 1].second));
  }
}

TEST(AdamW, StateRoundTripContinuesBitExactly) { check_resume(Device::cpu()); }

std::string load_error(AdamW& opt, const std::vector<std::pair<std::string, Tensor>>& state) {
  try {
    opt.load_state(state, 3, "ckpt/step_3.h5");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(AdamW, LoadStateNamesTheBadEntry) {
  AdamW opt({{"a", tensor_of({1.0f, 2.0f}), true}, {"b", tensor_of({3.0f}), true}}, test_config());
  auto good = opt.state();
  auto missing = good;
  missing.erase(missing.begin() + 3);
  EXPECT_EQ(load_error(opt, missing), "ckpt/step_3.h5: missing entry 'exp_avg_sq/b'");
  auto wrong_shape = good;
  wrong_shape[0].second = zeros({3});
  EXPECT_EQ(load_error(opt, wrong_shape), "ckpt/step_3.h5: entry 'exp_avg/a' is f32[3] cpu, expected f32[2]");
  auto extra = good;
  extra.emplace_back("exp_avg/c", zeros({1}));
  EXPECT_EQ(load_error(opt, extra),
            "ckpt/step_3.h5: unexpected entry 'exp_avg/c' (no parameter of that name in the optimizer)");
  EXPECT_EQ(opt.step_count(), 0);  // nothing was loaded
  auto as_f64 = good;
  as_f64[0].second = full({2}, 0.5, DType::f64);
  opt.load_state(as_f64, 7);
  EXPECT_EQ(opt.step_count(), 7);
  EXPECT_EQ(to_vector<float>(opt.state()[0].second), (std::vector<float>{0.5f, 0.5f}));
}

TEST(GradNorm, MatchesHandComputation) {
  const std::vector<Tensor> grads = {tensor_of({3.0f, 4.0f}), Tensor(), tensor_of({12.0f}),
                                     from_vector(std::vector<float>{1, 2, 2, 4}, {2, 2})};
  // sqrt(9 + 16 + 144 + 1 + 4 + 4 + 16) = sqrt(194)
  EXPECT_NEAR(item(global_grad_norm(grads)), std::sqrt(194.0), 1e-5);
  EXPECT_EQ(item(grad_norm_squared(grads)), 194.0);
  EXPECT_EQ(global_grad_norm(grads).dim(), 0);
  EXPECT_EQ(item(global_grad_norm(std::vector<Tensor>{Tensor()})), 0.0);
  // A non-contiguous grad counts the same.
  const Tensor m = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(item(grad_norm_squared(std::vector<Tensor>{transpose(m, 0, 1)})), 91.0);
}

TEST(GradNorm, RandomAgainstDouble) {
  std::mt19937 rng(9);
  std::vector<Tensor> grads;
  double sum = 0;
  for (int64_t n : {1, 31, 33, 4099}) {
    const std::vector<float> g = random_values(n, rng);
    for (float x : g) sum += static_cast<double>(x) * x;
    grads.push_back(tensor_of(g));
  }
  const double norm = item(global_grad_norm(grads));
  std::printf("norm %.9g vs %.9g, rel error %.2e\n", norm, std::sqrt(sum),
              std::abs(norm / std::sqrt(sum) - 1));
  EXPECT_NEAR(norm / std::sqrt(sum), 1.0, 1e-7);
}

TEST(ClipCoefficient, BothRegimes) {
  // The exact value rounded to f32 once (the norm values are exact in f32).
  EXPECT_EQ(item(clip_coefficient(full({}, 10.0), 1.0)), static_cast<float>(1.0 / (10.0 + 1e-6)));
  EXPECT_EQ(item(clip_coefficient(full({}, 400.0), 0.5)), static_cast<float>(0.5 / (400.0 + 1e-6)));
  EXPECT_EQ(item(clip_coefficient(full({}, 0.5), 1.0)), 1.0);
  EXPECT_EQ(item(clip_coefficient(full({}, 0.0), 1.0)), 1.0);
  EXPECT_EQ(item(clip_coefficient(full({}, 1.0 - 1e-5), 1.0)), 1.0);  // min(1, 1.000009)
  EXPECT_EQ(item(clip_coefficient(full({}, 1e6), 0.0)), 1.0);         // clipping disabled
  EXPECT_EQ(item(clip_coefficient(full({}, std::numeric_limits<double>::infinity()), 1.0)), 0.0);
  EXPECT_TRUE(std::isnan(item(clip_coefficient(full({}, std::nan("")), 1.0))));
  const Tensor c = clip_coefficient(full({}, 3.0), 1.0);
  EXPECT_EQ(c.dim(), 0);
  EXPECT_EQ(c.dtype(), DType::f32);
}

ScheduleConfig schedule(const std::string& type, int64_t warmup, double min_ratio = 0.1, double decay = 0.2) {
  ScheduleConfig s;
  s.type = type;
  s.warmup_steps = warmup;
  s.min_lr_ratio = min_ratio;
  s.decay_fraction = decay;
  return s;
}

TEST(Schedule, Warmup) {
  for (const char* type : {"cosine", "constant", "wsd"}) {
    const ScheduleConfig s = schedule(type, 10);
    EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 0, 100), 0.1) << type;  // lr / warmup at the first step
    EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 4, 100), 0.5) << type;
    EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 9, 100), 1.0) << type;   // the peak at the last warmup step
    EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 10, 100), 1.0) << type;  // and right after it
  }
  EXPECT_DOUBLE_EQ(learning_rate(schedule("cosine", 0), 2.0, 0, 100), 2.0);  // no warmup
}

TEST(Schedule, Cosine) {
  const ScheduleConfig s = schedule("cosine", 10, 0.1);  // 100 steps of cosine after the warmup
  const double peak = 2.0, min_lr = 0.2;
  EXPECT_DOUBLE_EQ(learning_rate(s, peak, 60, 110), min_lr + (peak - min_lr) * 0.5);  // midpoint
  EXPECT_DOUBLE_EQ(learning_rate(s, peak, 35, 110),
                   min_lr + (peak - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi / 4)));  // a quarter
  EXPECT_GT(learning_rate(s, peak, 109, 110), min_lr);                                      // last step
  EXPECT_DOUBLE_EQ(learning_rate(s, peak, 110, 110), min_lr);  // min ratio at max_steps
  EXPECT_DOUBLE_EQ(learning_rate(s, peak, 150, 110), min_lr);  // and beyond
  for (int64_t t = 10; t < 110; ++t)
    EXPECT_GT(learning_rate(s, peak, t, 110), learning_rate(s, peak, t + 1, 110));
  EXPECT_DOUBLE_EQ(learning_rate(schedule("cosine", 10, 0.0), 1.0, 110, 110), 0.0);
}

TEST(Schedule, Constant) {
  const ScheduleConfig s = schedule("constant", 5);
  for (int64_t t : {5, 50, 99, 100, 1000}) EXPECT_DOUBLE_EQ(learning_rate(s, 3e-4, t, 100), 3e-4);
}

TEST(Schedule, WarmupStableDecay) {
  const ScheduleConfig s = schedule("wsd", 10, 0.1, 0.2);  // decay over the last 20 of 100 steps
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 10, 100), 1.0);   // stable
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 79, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 80, 100), 1.0);   // decay starts from the peak
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 90, 100), 0.55);  // halfway to 0.1
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 95, 100), 1.0 - 0.9 * 0.75);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 100, 100), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 120, 100), 0.1);
  // A decay window reaching into the warmup starts after it.
  const ScheduleConfig late = schedule("wsd", 10, 0.0, 0.95);
  EXPECT_DOUBLE_EQ(learning_rate(late, 1.0, 9, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(late, 1.0, 10, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(late, 1.0, 55, 100), 0.5);
}

TEST(Schedule, UnknownTypeIsAnInputError) {
  EXPECT_THROW(learning_rate(schedule("linear", 0), 1.0, 0, 10), InputError);
}

TEST(WeightDecay, NoDecayKinds) {
  const std::vector<std::string> all = {"norm", "bias", "embedding"};
  EXPECT_TRUE(uses_weight_decay("blocks.0.attn.wq.weight", all));
  EXPECT_TRUE(uses_weight_decay("blocks.0.mlp.w1.weight", all));
  EXPECT_FALSE(uses_weight_decay("blocks.0.attn_norm.weight", all));
  EXPECT_FALSE(uses_weight_decay("final_norm.weight", all));
  EXPECT_FALSE(uses_weight_decay("blocks.0.attn.wq.bias", all));
  EXPECT_FALSE(uses_weight_decay("bias", all));
  EXPECT_TRUE(uses_weight_decay("blocks.0.biasgate.weight", all));  // "bias" must be the last component
  EXPECT_FALSE(uses_weight_decay("tok_embeddings.weight", all));
  EXPECT_FALSE(uses_weight_decay("embed.weight", all));
  EXPECT_TRUE(uses_weight_decay("final_norm.weight", {"bias", "embedding"}));
  EXPECT_TRUE(uses_weight_decay("embed.weight", {"norm"}));
  EXPECT_TRUE(uses_weight_decay("x.bias", {}));
  EXPECT_THROW(uses_weight_decay("x.weight", {"gain"}), InputError);
}

// ---- CUDA against the CPU reference ----

// Enough tensors for two AdamW launches and two grad-norm launches, odd sizes and sizes over one chunk,
// and one tensor at an odd offset (the unvectorised path).
std::vector<int64_t> cuda_sizes() {
  std::vector<int64_t> sizes;
  const int64_t base[] = {1, 3, 31, 33, 113, 1031, 4099, 8192, 8193, 20011};
  for (int i = 0; i < 110; ++i) sizes.push_back(base[i % 10]);
  return sizes;
}

// A contiguous f32 tensor at an element offset of 1 (not 16-byte aligned).
Tensor unaligned_copy(const Tensor& t) {
  Tensor flat = zeros({t.numel() + 1}, DType::f32, t.device());
  Tensor view = narrow(flat, 0, 1, t.numel());
  copy_(view, t);
  return view;
}

TEST(OptimCuda, AdamWMatchesCpu) {
  NSA_REQUIRE_GPU();
  std::mt19937 rng(21);
  const std::vector<int64_t> sizes = cuda_sizes();
  std::vector<OptimParam> cpu_params, gpu_params;
  for (size_t k = 0; k < sizes.size(); ++k) {
    const Tensor p = tensor_of(random_values(sizes[k], rng));
    Tensor g = to(p, Device::cuda());
    if (k == 5) g = unaligned_copy(g);
    cpu_params.push_back({str("p", k), p, k % 3 != 0});
    gpu_params.push_back({str("p", k), g, k % 3 != 0});
  }
  AdamW cpu(cpu_params, test_config()), gpu(gpu_params, test_config());
  for (int step = 0; step < 3; ++step) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      const Tensor g = tensor_of(random_values(sizes[k], rng, 0.1));
      cpu_params[k].param.set_grad(g);
      gpu_params[k].param.set_grad(k == 7 ? unaligned_copy(to(g, Device::cuda())) : to(g, Device::cuda()));
    }
    cpu.step(1e-2, full({}, 0.6));
    gpu.step(1e-2, full({}, 0.6, DType::f32, Device::cuda()));
  }
  double worst = 0;
  const auto cpu_state = cpu.state(), gpu_state = gpu.state();
  for (size_t k = 0; k < sizes.size(); ++k) {
    worst = std::max(worst, rel_error(to(gpu_params[k].param, Device::cpu()), cpu_params[k].param));
    worst = std::max(worst, rel_error(to(gpu_state[2 * k].second, Device::cpu()), cpu_state[2 * k].second));
    worst = std::max(worst,
                     rel_error(to(gpu_state[2 * k + 1].second, Device::cpu()), cpu_state[2 * k + 1].second));
  }
  std::printf("worst rel error (p, m, v over %zu tensors): %.2e\n", sizes.size(), worst);
  EXPECT_LT(worst, 1e-6);
}

TEST(OptimCuda, GradNormMatchesCpu) {
  NSA_REQUIRE_GPU();
  std::mt19937 rng(23);
  std::vector<Tensor> cpu_grads, gpu_grads;
  for (int64_t n : cuda_sizes()) {
    const Tensor g = tensor_of(random_values(n, rng));
    cpu_grads.push_back(g);
    gpu_grads.push_back(cpu_grads.size() == 4 ? unaligned_copy(to(g, Device::cuda()))
                                              : to(g, Device::cuda()));
  }
  cpu_grads.push_back(Tensor());
  gpu_grads.push_back(Tensor());
  const Tensor norm = global_grad_norm(gpu_grads);
  EXPECT_EQ(norm.device(), Device::cuda());
  EXPECT_EQ(norm.dim(), 0);
  const double cpu_norm = item(global_grad_norm(cpu_grads)), gpu_norm = item(norm);
  std::printf("norm cpu %.9g gpu %.9g rel error %.2e\n", cpu_norm, gpu_norm,
              std::abs(gpu_norm / cpu_norm - 1));
  EXPECT_NEAR(gpu_norm / cpu_norm, 1.0, 1e-6);
  EXPECT_EQ(item(global_grad_norm(gpu_grads)), gpu_norm);  // deterministic
  EXPECT_NEAR(item(grad_norm_squared(gpu_grads)) / (cpu_norm * cpu_norm), 1.0, 1e-6);
  EXPECT_EQ(item(global_grad_norm(std::vector<Tensor>{zeros({0}, DType::f32, Device::cuda())})), 0.0);
  for (double n : {0.3, 7.0}) {
    const double gpu_c = item(clip_coefficient(full({}, n, DType::f32, Device::cuda()), 1.0));
    EXPECT_EQ(gpu_c, item(clip_coefficient(full({}, n), 1.0)));
  }
}

TEST(OptimCuda, StateRoundTripContinuesBitExactly) {
  NSA_REQUIRE_GPU();
  check_resume(Device::cuda());
}

}  // namespace
}  // namespace nsa
