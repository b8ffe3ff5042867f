// The autograd engine: accumulation, ordering, no_grad, detach, release of saved tensors.
#include <cmath>

#include "core/allocator.h"
#include "test_util.h"

namespace nsa {
namespace {

Tensor scalar(double v) { return full({}, v, DType::f64); }

TEST(Autograd, LeafUsedTwiceAccumulates) {
  Tensor x = scalar(3.0).set_requires_grad(true);
  Tensor y = add(mul(x, x), mul_scalar(x, 2.0));  // x² + 2x  ->  2x + 2 = 8
  backward(y);
  EXPECT_DOUBLE_EQ(item(x.grad()), 8.0);
  backward(add(mul(x, x), mul_scalar(x, 2.0)));  // a second pass accumulates into .grad
  EXPECT_DOUBLE_EQ(item(x.grad()), 16.0);
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = from_vector<double>({1, 2, 3}, {3}).set_requires_grad(true);
  Tensor a = exp(x);
  Tensor b = mul(a, a);  // e^{2x}
  Tensor c = add(a, b);  // e^x + e^{2x}
  backward(sum(c));
  const std::vector<double> g = to_vector<double>(x.grad());
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(g[i], std::exp(i + 1.0) + 2 * std::exp(2 * (i + 1.0)), 1e-9);
}

TEST(Autograd, NoGradAndDetachRecordNothing) {
  Tensor x = scalar(2.0).set_requires_grad(true);
  {
    NoGradGuard guard;
    Tensor y = mul(x, x);
    EXPECT_FALSE(y.requires_grad());
  }
  Tensor d = detach(x);
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage().get(), x.storage().get());
  Tensor y = mul(x, d);  // the detached factor is a constant: dy/dx = d = 2
  backward(y);
  EXPECT_DOUBLE_EQ(item(x.grad()), 2.0);
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor x = scalar(1.5).set_requires_grad(true);
  Tensor y = exp(x);
  backward(y, Tensor(), /*retain_graph=*/true);
  backward(y);  // allowed: the graph was retained
  EXPECT_NEAR(item(x.grad()), 2 * std::exp(1.5), 1e-12);
  EXPECT_THROW(backward(y), Error);  // saved tensors are gone now
}

TEST(Autograd, RootChecks) {
  Tensor x = from_vector<double>({1, 2}, {2}).set_requires_grad(true);
  EXPECT_THROW(backward(mul_scalar(x, 2.0)), Error);  // non-scalar root without a gradient
  backward(mul_scalar(x, 2.0), from_vector<double>({1, 10}, {2}));
  EXPECT_EQ(to_vector<double>(x.grad()), (std::vector<double>{2, 20}));
  EXPECT_THROW(backward(scalar(1.0)), Error);  // nothing requires grad
}

TEST(Autograd, InPlaceOnTrackedTensorIsRefused) {
  Tensor x = zeros({3}, DType::f64).set_requires_grad(true);
  EXPECT_THROW(add_(x, ones({3}, DType::f64)), Error);
  EXPECT_THROW(fill_(x, 1.0), Error);
  NoGradGuard guard;
  add_(x, ones({3}, DType::f64));  // allowed outside grad mode (optimizer updates)
  EXPECT_EQ(to_vector<double>(x), (std::vector<double>{1, 1, 1}));
}

TEST(Autograd, SavedTensorsAreReleasedAfterBackward) {
  Tensor x = randn({64, 64}, DType::f64).set_requires_grad(true);
  const int64_t before = memory_stats(Device::cpu()).allocated_bytes;
  Tensor loss = sum(exp(tanh(mul(x, x))));
  const int64_t during = memory_stats(Device::cpu()).allocated_bytes;
  EXPECT_GT(during, before);  // the graph holds intermediates
  backward(loss);
  const int64_t after = memory_stats(Device::cpu()).allocated_bytes;
  // What remains: x.grad and the 0-d loss itself.
  EXPECT_LE(after - before, x.grad().nbytes() + 64 + 64);
}

TEST(Autograd, GradientsOfViewsFlowToTheBase) {
  Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad(true);
  Tensor y = mul(transpose(x, 0, 1), from_vector<double>({1, 10, 100, 1000, 1e4, 1e5}, {3, 2}));
  backward(sum(narrow(y, 0, 1, 2)));
  // y[i, j] = x[j, i] * w[i, j]; rows 1..2 of y count: x[j, i] for i >= 1 gets w[i, j].
  EXPECT_EQ(to_vector<double>(x.grad()), (std::vector<double>{0, 100, 1e4, 0, 1000, 1e5}));
}

TEST(Autograd, GradientCastsBackToTheLeafDtypeAndDevice) {
  Tensor x = from_vector<double>({0.5, -1.0}, {2}).set_requires_grad(true);
  Tensor y = sum(square(to(x, DType::f32)));
  backward(y);
  EXPECT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_EQ(to_vector<double>(x.grad()), (std::vector<double>{1.0, -2.0}));
}

TEST(Autograd, PostAccumulateHookRunsOncePerPassWithTheFinalGradient) {
  Tensor x = from_vector<double>({1, 2}, {2}).set_requires_grad(true);
  Tensor unused = from_vector<double>({1}, {1}).set_requires_grad(true);
  std::vector<std::vector<double>> seen;  // x.grad at each call
  x.autograd_meta().post_accumulate_hook = [&] { seen.push_back(to_vector<double>(x.grad())); };
  bool unused_called = false;
  unused.autograd_meta().post_accumulate_hook = [&] { unused_called = true; };
  // x reaches the loss along three paths: the hook sees their sum once, not three partial sums.
  backward(sum(add(mul(x, x), add(mul_scalar(x, 3.0), x))));  // d/dx = 2x + 4
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<double>{6, 8}));
  backward(sum(mul_scalar(x, 10.0)));  // a second pass: called again, after accumulating
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], (std::vector<double>{16, 18}));
  EXPECT_FALSE(unused_called);  // no gradient reached it: no call
  x.autograd_meta().post_accumulate_hook = nullptr;
  backward(sum(x));
  EXPECT_EQ(seen.size(), 2u);
}

}  // namespace
}  // namespace nsa
