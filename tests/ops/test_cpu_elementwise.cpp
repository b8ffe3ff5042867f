// The CPU backend's flat, multi-threaded elementwise loops (taken when every operand is contiguous) give
// the same bits as its strided loops (taken for views), for every op and dtype; and f32 add/mul equal the
// correctly rounded float results (double maths rounded once).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/parallel.h"
#include "ops/ops.h"

namespace nsa {
namespace {

constexpr int64_t kRows = 300, kCols = 257;  // 77100 elements: several pool chunks

struct Inputs {
  Tensor a, b;    // contiguous [kRows, kCols]
  Tensor at, bt;  // the same values as transposed views of [kCols, kRows] tensors (strided loops)
};

Inputs make_inputs(DType dtype) {
  std::mt19937 rng(17);
  std::normal_distribution<double> normal(0.0, 2.0);
  std::vector<double> a(kRows * kCols), b(kRows * kCols);
  for (double& v : a) v = normal(rng);
  for (double& v : b) v = std::fabs(normal(rng)) + 0.1;  // positive: log, sqrt, pow and div stay finite
  Inputs in;
  in.a = from_vector(a, {kRows, kCols}, dtype);
  in.b = from_vector(b, {kRows, kCols}, dtype);
  in.at = transpose(contiguous(transpose(in.a, 0, 1)), 0, 1);
  in.bt = transpose(contiguous(transpose(in.b, 0, 1)), 0, 1);
  EXPECT_FALSE(in.at.is_contiguous());
  return in;
}

bool same_bits(const Tensor& x, const Tensor& y) {
  const Tensor cx = contiguous(x), cy = contiguous(y);
  return cx.nbytes() == cy.nbytes() && std::memcmp(cx.data_ptr(), cy.data_ptr(), cx.nbytes()) == 0;
}

class CpuElementwise : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    saved_ = cpu::num_threads();
    cpu::set_num_threads(2);
  }
  void TearDown() override { cpu::set_num_threads(saved_); }
  cpu::CpuBackend backend_;
  int saved_ = 1;
};

TEST_P(CpuElementwise, FlatAndStridedLoopsAgreeBitForBit) {
  const DType dt = GetParam();
  const Inputs in = make_inputs(dt);
  auto empty = [&](DType d) { return Tensor::empty({kRows, kCols}, d); };
  for (int op = 0; op <= static_cast<int>(UnaryOp::pow_scalar); ++op) {
    for (const Tensor* x : {&in.a, &in.b}) {
      Tensor flat = empty(dt), strided = empty(dt);
      backend_.unary(static_cast<UnaryOp>(op), flat, *x, 0.7);
      backend_.unary(static_cast<UnaryOp>(op), strided, x == &in.a ? in.at : in.bt, 0.7);
      EXPECT_TRUE(same_bits(flat, strided)) << "unary op " << op;
    }
  }
  for (int op = 0; op <= static_cast<int>(BinaryOp::relu_backward); ++op) {
    Tensor flat = empty(dt), strided = empty(dt);
    backend_.binary(static_cast<BinaryOp>(op), flat, in.a, in.b);
    backend_.binary(static_cast<BinaryOp>(op), strided, in.at, in.bt);
    EXPECT_TRUE(same_bits(flat, strided)) << "binary op " << op;
  }
  Tensor ga = empty(dt), gb = empty(dt), ga_s = empty(dt), gb_s = empty(dt);
  backend_.swiglu_backward(ga, gb, in.b, in.a, in.b);
  backend_.swiglu_backward(ga_s, gb_s, in.bt, in.at, in.bt);
  EXPECT_TRUE(same_bits(ga, ga_s) && same_bits(gb, gb_s)) << "swiglu_backward";
  for (DType to_type : {DType::f64, DType::f32, DType::bf16}) {
    Tensor flat = empty(to_type), strided = empty(to_type);
    backend_.copy(flat, in.a);
    backend_.copy(strided, in.at);
    EXPECT_TRUE(same_bits(flat, strided)) << "copy to " << dtype_name(to_type);
  }
}

TEST_P(CpuElementwise, FillWritesEveryElement) {
  const DType dt = GetParam();
  Tensor flat = Tensor::empty({kRows, kCols}, dt);
  backend_.fill(flat, 0.375);
  const std::vector<double> v = to_vector<double>(flat);
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], 0.375) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuElementwise, ::testing::Values(DType::f32, DType::bf16, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(CpuElementwiseF32, AddAndMulAreTheRoundedFloatResults) {
  const Inputs in = make_inputs(DType::f32);
  const std::vector<float> a = to_vector<float>(in.a), b = to_vector<float>(in.b);
  const std::vector<float> sum = to_vector<float>(add(in.a, in.b)), prod = to_vector<float>(mul(in.a, in.b));
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(sum[i], a[i] + b[i]) << i;
    ASSERT_EQ(prod[i], a[i] * b[i]) << i;
  }
}

}  // namespace
}  // namespace nsa
