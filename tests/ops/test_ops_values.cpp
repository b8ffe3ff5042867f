// Hand-checked values for ops whose gradient checks alone would not catch a wrong forward definition
// (conventions: RoPE pairing, top-k tie order, cross-entropy's ignore_index and mean).
#include <cmath>

#include "test_util.h"

namespace nsa {
namespace {

std::vector<double> values(const Tensor& t) { return to_vector<double>(t); }

TEST(OpValues, SoftmaxAndLogSoftmax) {
  Tensor x = from_vector<double>({0.0, std::log(2.0), 100.0, 100.0}, {2, 2});
  const std::vector<double> s = values(softmax(x));
  EXPECT_NEAR(s[0], 1.0 / 3, 1e-15);
  EXPECT_NEAR(s[1], 2.0 / 3, 1e-15);
  EXPECT_NEAR(s[2], 0.5, 1e-15);                                 // large logits do not overflow
  EXPECT_NEAR(values(log_softmax(x))[3], std::log(0.5), 1e-13);  // 100 - lse loses ~2 digits
}

TEST(OpValues, CrossEntropyMeansOverCountedRowsOnly) {
  Tensor logits = from_vector<double>({0, 0, 0, 1, 2, 3, 5, 5, 5}, {3, 3});
  Tensor t = from_vector<int64_t>({2, -100, 0}, {3});
  Tensor x = detach(logits).set_requires_grad(true);
  Tensor loss = cross_entropy(x, t);
  const double row0 = std::log(3.0), row2 = std::log(3.0);
  EXPECT_NEAR(item(loss), (row0 + row2) / 2, 1e-14);
  backward(loss);
  const std::vector<double> g = values(x.grad());
  EXPECT_NEAR(g[0], (1.0 / 3) / 2, 1e-15);
  EXPECT_NEAR(g[2], (1.0 / 3 - 1) / 2, 1e-15);
  EXPECT_EQ(g[3], 0.0);  // the ignored row gets no gradient
  EXPECT_EQ(g[5], 0.0);
  Tensor none = cross_entropy(logits, from_vector<int64_t>({-100, -100, -100}, {3}));
  EXPECT_EQ(item(none), 0.0);
  EXPECT_THROW(cross_entropy(logits, from_vector<int64_t>({3, 0, 0}, {3})), Error);
}

TEST(OpValues, RmsNorm) {
  Tensor x = from_vector<double>({3, 4}, {1, 2});
  Tensor w = from_vector<double>({1, 2}, {2});
  const double r = 1.0 / std::sqrt((9 + 16) / 2.0 + 1e-6);
  const std::vector<double> y = values(rms_norm(x, w, 1e-6));
  EXPECT_NEAR(y[0], 3 * r, 1e-14);
  EXPECT_NEAR(y[1], 8 * r, 1e-14);
}

TEST(OpValues, RopePairsHalvesAndRotatesByPosition) {
  // head_dim 4: pairs (0, 2) and (1, 3); pair i turns by pos · theta^(-2i/4).
  Tensor x = from_vector<double>({1, 0, 0, 1}, {1, 1, 4});
  Tensor p0 = from_vector<int64_t>({0}, {1});
  EXPECT_EQ(values(rope(x, p0, 100.0)), values(x));  // position 0 is the identity
  Tensor p = from_vector<int64_t>({3}, {1});
  const std::vector<double> y = values(rope(x, p, 100.0));
  const double a0 = 3.0, a1 = 3.0 / 10.0;  // 100^(-1/2) = 0.1
  EXPECT_NEAR(y[0], std::cos(a0), 1e-14);  // (1, 0) -> (cos, sin)
  EXPECT_NEAR(y[2], std::sin(a0), 1e-14);
  EXPECT_NEAR(y[1], -std::sin(a1), 1e-14);  // (0, 1) -> (-sin, cos)
  EXPECT_NEAR(y[3], std::cos(a1), 1e-14);
}

TEST(OpValues, TopkOrderAndTies) {
  Tensor x = from_vector<double>({1, 3, 3, 2, -1, 3}, {1, 6});
  auto [v, i] = topk(x, 4);
  EXPECT_EQ(values(v), (std::vector<double>{3, 3, 3, 2}));
  EXPECT_EQ(to_vector<int64_t>(i), (std::vector<int64_t>{1, 2, 5, 3}));
  auto [mv, mi] = max(x, -1);
  EXPECT_EQ(item(mv), 3.0);
  EXPECT_EQ(to_vector<int64_t>(mi)[0], 1);  // the first maximum
  EXPECT_THROW(topk(x, 7), Error);
}

TEST(OpValues, MatmulAndLinear) {
  Tensor a = from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor b = from_vector<double>({5, 6}, {2, 1});
  EXPECT_EQ(values(matmul(a, b)), (std::vector<double>{17, 39}));
  EXPECT_EQ(values(matmul(a, b, true, false)), (std::vector<double>{23, 34}));
  Tensor w = from_vector<double>({1, 0, 0, 1, 1, 1}, {3, 2});  // [out=3, in=2]
  EXPECT_EQ(values(linear(a, w)), (std::vector<double>{1, 2, 3, 3, 4, 7}));
}

TEST(OpValues, IndexingOpsAndErrors) {
  Tensor w = from_vector<double>({0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor ids = from_vector<int32_t>({2, 0, 2}, {3});
  EXPECT_EQ(values(embedding(w, ids)), (std::vector<double>{20, 21, 0, 1, 20, 21}));
  Tensor acc = index_add(zeros({3, 2}, DType::f64), 0, ids, ones({3, 2}, DType::f64));
  EXPECT_EQ(values(acc), (std::vector<double>{1, 1, 0, 0, 2, 2}));
  EXPECT_THROW(embedding(w, from_vector<int64_t>({3}, {1})), Error);
  EXPECT_THROW(embedding(w, from_vector<int64_t>({-1}, {1})), Error);
  Tensor src = from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor gi = from_vector<int64_t>({1, 1, 0, 1}, {2, 2});
  EXPECT_EQ(values(gather(src, 1, gi)), (std::vector<double>{2, 2, 3, 4}));
  EXPECT_EQ(values(scatter_add(zeros({2, 2}, DType::f64), 1, gi, src)), (std::vector<double>{0, 3, 3, 4}));
}

TEST(OpValues, SumMeanOverDims) {
  Tensor x = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(values(sum(x, {0})), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(values(sum(x, {1}, true)), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum(x, {1}, true).shape(), (Dims{2, 1}));
  EXPECT_EQ(item(mean(x)), 3.5);
  EXPECT_EQ(values(sum_to(x, {1, 3})), (std::vector<double>{5, 7, 9}));
}

TEST(OpValues, CatSplit) {
  Tensor a = from_vector<double>({1, 2}, {1, 2});
  Tensor b = from_vector<double>({3, 4, 5, 6}, {2, 2});
  Tensor c = cat({a, b}, 0);
  EXPECT_EQ(values(c), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  auto parts = split(c, {2, 1}, 0);
  EXPECT_EQ(values(parts[1]), (std::vector<double>{5, 6}));
  EXPECT_THROW(cat({a, zeros({2, 3}, DType::f64)}, 0), Error);
}

}  // namespace
}  // namespace nsa
