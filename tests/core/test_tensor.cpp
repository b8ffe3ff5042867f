// Tensor state, views and copies: strides and offsets of each view, contiguous(), dtype conversions
// (bf16 rounding), copies between CPU and CUDA.
#include <cstring>

#include "test_util.h"

namespace nsa {
namespace {

Tensor iota(const Dims& shape, DType dtype = DType::f32, Device device = Device::cpu()) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return from_vector<float>(v, shape, dtype, device);
}

TEST(Tensor, EmptyIsContiguousWithRowMajorStrides) {
  Tensor t = empty({2, 3, 4});
  EXPECT_EQ(t.strides(), (Dims{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.desc(), "f32[2, 3, 4] cpu");
}

TEST(Tensor, TransposeAndPermuteShareStorage) {
  Tensor t = iota({2, 3});
  Tensor tt = transpose(t, 0, 1);
  EXPECT_EQ(tt.shape(), (Dims{3, 2}));
  EXPECT_EQ(tt.strides(), (Dims{1, 3}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.storage().get(), t.storage().get());
  EXPECT_EQ(to_vector<float>(tt), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor p = permute(iota({2, 3, 4}), {2, 0, 1});
  EXPECT_EQ(p.shape(), (Dims{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Dims{1, 12, 4}));
  EXPECT_EQ(to_vector<float>(p)[1], 4.0f);  // p[0, 0, 1] = t[0, 1, 0]
}

TEST(Tensor, NarrowSelectExpandOffsets) {
  Tensor t = iota({4, 5});
  Tensor n = narrow(t, 1, 2, 3);
  EXPECT_EQ(n.offset(), 2);
  EXPECT_EQ(n.shape(), (Dims{4, 3}));
  EXPECT_EQ(to_vector<float>(n)[0], 2.0f);
  EXPECT_EQ(to_vector<float>(n)[3], 7.0f);
  Tensor s = select(t, 0, 2);
  EXPECT_EQ(s.shape(), (Dims{5}));
  EXPECT_EQ(to_vector<float>(s), (std::vector<float>{10, 11, 12, 13, 14}));
  Tensor e = expand(iota({3, 1}), {2, 3, 4});
  EXPECT_EQ(e.strides(), (Dims{0, 1, 0}));
  EXPECT_EQ(to_vector<float>(e)[5], 1.0f);
  EXPECT_THROW(expand(iota({3, 2}), {3, 4}), Error);
  EXPECT_THROW(narrow(t, 1, 3, 3), Error);
}

TEST(Tensor, ReshapeViewsWhenContiguousAndCopiesOtherwise) {
  Tensor t = iota({2, 6});
  Tensor r = reshape(t, {3, -1});
  EXPECT_EQ(r.shape(), (Dims{3, 4}));
  EXPECT_EQ(r.storage().get(), t.storage().get());
  Tensor tt = transpose(t, 0, 1);
  Tensor r2 = reshape(tt, {12});
  EXPECT_NE(r2.storage().get(), t.storage().get());
  EXPECT_EQ(to_vector<float>(r2)[1], 6.0f);
  EXPECT_THROW(reshape(t, {5, -1}), Error);
  EXPECT_THROW(reshape(t, {-1, -1}), Error);
}

TEST(Tensor, ContiguousOfViewsMatchesElementOrder) {
  Tensor t = iota({3, 4, 5});
  Tensor v = narrow(permute(t, {2, 0, 1}), 0, 1, 3);
  Tensor c = contiguous(v);
  EXPECT_TRUE(c.is_contiguous());
  const std::vector<float> values = to_vector<float>(c);
  // c[i, j, k] = t[j, k, i + 1]
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(values[(i * 3 + j) * 4 + k], static_cast<float>(j * 20 + k * 5 + i + 1));
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16(1.0f).bits, 0x3f80);
  // 1 + 2^-8 is half way between two bf16 values: ties go to the even one (1.0).
  EXPECT_EQ(bf16(1.0f + 0x1p-8f).bits, 0x3f80);
  EXPECT_EQ(bf16(1.0f + 0x1p-8f + 0x1p-12f).bits, 0x3f81);
  EXPECT_EQ(static_cast<float>(bf16(3.140625f)), 3.140625f);
  Tensor t = from_vector<float>({1.0f + 0x1p-7f, -2.5f, 1e-3f}, {3});
  Tensor b = to(t, DType::bf16);
  EXPECT_EQ(b.dtype(), DType::bf16);
  const std::vector<float> back = to_vector<float>(b);
  EXPECT_EQ(back[0], 1.0f + 0x1p-7f);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_NEAR(back[2], 1e-3f, 1e-5f);
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor i = from_vector<int64_t>({-3, 0, 7, 1 << 20}, {4});
  for (DType d : {DType::f64, DType::f32, DType::i32, DType::i64})
    EXPECT_TRUE(test::equal_values(to(i, d), i));
  EXPECT_EQ(to_vector<int32_t>(from_vector<float>({2.9f, -2.9f}, {2})), (std::vector<int32_t>{2, -2}));
}

TEST(Tensor, CopyBetweenCpuAndCudaKeepsValues) {
  NSA_REQUIRE_GPU();
  Tensor t = randn({33, 17});
  for (DType d : {DType::f32, DType::bf16, DType::f64}) {
    Tensor g = to(t, Device::cuda(), d);
    EXPECT_EQ(g.device(), Device::cuda());
    EXPECT_TRUE(test::equal_values(to(g, Device::cpu()), to(t, d)));
    // A strided view on the GPU, copied back, keeps its element order.
    Tensor v = transpose(g, 0, 1);
    EXPECT_TRUE(test::equal_values(to(v, Device::cpu()), transpose(to(t, d), 0, 1)));
  }
  Tensor ids = from_vector<int64_t>({5, -1, 1LL << 40}, {3}, DType::i64, Device::cuda());
  EXPECT_EQ(to_vector<int64_t>(ids), (std::vector<int64_t>{5, -1, 1LL << 40}));
}

TEST(Tensor, RequiresGradOnlyOnFloatingLeaves) {
  Tensor i = zeros({2}, DType::i64);
  EXPECT_THROW(i.set_requires_grad(true), Error);
  Tensor x = zeros({2}).set_requires_grad(true);
  Tensor y = mul_scalar(x, 2.0);
  EXPECT_THROW(y.set_requires_grad(false), Error);
}

TEST(Tensor, ErrorsNameTheOpAndShapes) {
  try {
    add(zeros({2, 3}), zeros({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[add] shapes [2, 3] and [4] do not broadcast"), std::string::npos)
        << e.what();
  }
  try {
    rms_norm(zeros({2, 8}), zeros({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[rms_norm] expected weight of shape [8], got f32[4] cpu"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(add(zeros({2}), zeros({2}, DType::f64)), Error);
  EXPECT_THROW(matmul(zeros({2, 3}), zeros({4, 5})), Error);
}

}  // namespace
}  // namespace nsa
