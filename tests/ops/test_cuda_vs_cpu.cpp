// Every op case on CUDA (f32 and bf16) against the CPU reference computed in f64 on the same input
// values: outputs and input gradients, relative (norm-wise) error printed. Tolerances: f32 1e-5 (f32
// rounding, reductions of up to a few thousand terms); bf16 1e-2 unless the case states otherwise (the
// output rounding alone is 2^-9 ≈ 2e-3 per element). Integer outputs (indices) must match exactly.
#include "ops/op_cases.h"
#include "test_util.h"

namespace nsa::test {
namespace {

struct CaseRun {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;  // per input (undefined where not differentiated)
};

// Runs the case and back-propagates Σ_o Σ(out_o · w_o) with the given weights.
CaseRun run_case(const OpCase& c, const std::vector<Tensor>& inputs, const std::vector<Tensor>& weights) {
  CaseRun r;
  r.outputs = c.fn(inputs);
  Tensor total;
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    if (!weights[i].defined() || !r.outputs[i].requires_grad()) continue;
    Tensor term = sum(mul(to(r.outputs[i], weights[i].dtype()), weights[i]));
    total = total.defined() ? add(total, term) : term;
  }
  if (total.defined()) backward(total);
  for (const Tensor& x : inputs) r.grads.push_back(x.requires_grad() ? x.grad() : Tensor());
  return r;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2e", v);
  return buf;
}

class CudaVsCpu : public ::testing::TestWithParam<std::tuple<size_t, DType>> {};

TEST_P(CudaVsCpu, MatchesReference) {
  NSA_REQUIRE_GPU();
  const auto [id, dtype] = GetParam();
  const OpCase& c = op_cases()[id];
  const double tol = dtype == DType::bf16 ? c.bf16_tol : 1e-5;
  const Device gpu = Device::cuda(0);

  // The same values on both sides: inputs rounded to `dtype` first, the reference then computes in f64.
  std::vector<Tensor> dev_in = make_inputs(c, dtype, gpu, true, 11);
  std::vector<Tensor> ref_in;
  for (size_t i = 0; i < dev_in.size(); ++i) {
    Tensor t = to(detach(dev_in[i]), Device::cpu());
    if (is_floating(t.dtype())) {
      t = to(t, DType::f64);
      if (dev_in[i].requires_grad()) t.set_requires_grad(true);
    }
    ref_in.push_back(t);
  }
  std::vector<Tensor> probe;
  {
    NoGradGuard no_grad;
    probe = c.fn(ref_in);
  }
  std::vector<Tensor> ref_w, dev_w;
  Generator gen(99);
  for (const Tensor& o : probe) {
    if (!is_floating(o.dtype())) {
      ref_w.emplace_back();
      dev_w.emplace_back();
      continue;
    }
    Tensor w = to(randn(o.shape(), DType::f32, Device::cpu(), &gen), dtype);  // representable in dtype
    ref_w.push_back(to(w, DType::f64));
    dev_w.push_back(to(w, gpu));
  }
  const CaseRun ref = run_case(c, ref_in, ref_w);
  const CaseRun dev = run_case(c, dev_in, dev_w);

  std::string line = "[cuda-vs-cpu] " + c.name + " " + dtype_name(dtype);
  ASSERT_EQ(ref.outputs.size(), dev.outputs.size());
  for (size_t i = 0; i < ref.outputs.size(); ++i) {
    ASSERT_EQ(dev.outputs[i].device(), gpu);
    if (!is_floating(ref.outputs[i].dtype())) {
      EXPECT_TRUE(equal_values(dev.outputs[i], ref.outputs[i]))
          << c.name << ": integer output " << i << " differs";
      line += " out" + std::to_string(i) + "=exact";
      continue;
    }
    const double err = rel_error(dev.outputs[i], ref.outputs[i]);
    const auto [worst, at] = max_abs_error(dev.outputs[i], ref.outputs[i]);
    line += " out" + std::to_string(i) + "=" + sci(err);
    EXPECT_LT(err, tol) << c.name << " output " << i << ": max abs error " << worst << " at flat index "
                        << at;
  }
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    if (!ref.grads[i].defined()) continue;
    ASSERT_TRUE(dev.grads[i].defined()) << c.name << ": no CUDA gradient for input " << i;
    const double err = rel_error(dev.grads[i], ref.grads[i]);
    line += " grad" + std::to_string(i) + "=" + sci(err);
    EXPECT_LT(err, tol) << c.name << " gradient of input " << i;
  }
  std::printf("%s (tol %.0e)\n", line.c_str(), tol);
}

std::vector<std::tuple<size_t, DType>> all_cases() {
  std::vector<std::tuple<size_t, DType>> v;
  for (size_t i = 0; i < op_cases().size(); ++i) {
    v.emplace_back(i, DType::f32);
    v.emplace_back(i, DType::bf16);
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaVsCpu, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<std::tuple<size_t, DType>>& info) {
                           return op_cases()[std::get<0>(info.param)].name + "_" +
                                  dtype_name(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace nsa::test
