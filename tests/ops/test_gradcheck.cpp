// f64 central-difference gradient checks of every differentiable op case (tests/ops/op_cases.cpp), CPU.
#include "ops/op_cases.h"
#include "test_util.h"

namespace nsa::test {
namespace {

class GradCheck : public ::testing::TestWithParam<size_t> {};

TEST_P(GradCheck, MatchesFiniteDifferences) {
  const OpCase& c = op_cases()[GetParam()];
  if (!c.gradcheck) GTEST_SKIP() << c.name << " is covered by the CUDA comparison only (too large for FD)";
  std::vector<Tensor> inputs = make_inputs(c, DType::f64, Device::cpu(), true, 7);
  std::string report;
  const double err = gradcheck(c.fn, inputs, &report);
  std::printf("[gradcheck] %-24s%s\n", c.name.c_str(), report.c_str());
  EXPECT_LT(err, 1e-6) << c.name << report;
}

std::vector<size_t> gradcheck_cases() {
  std::vector<size_t> ids;
  for (size_t i = 0; i < op_cases().size(); ++i)
    if (op_cases()[i].gradcheck) ids.push_back(i);
  return ids;
}

INSTANTIATE_TEST_SUITE_P(Ops, GradCheck, ::testing::ValuesIn(gradcheck_cases()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return op_cases()[info.param].name;
                         });

}  // namespace
}  // namespace nsa::test
