// Philox: known-answer vectors of the Random123 reference, the distributions, and bit-identical
// streams on CPU and CUDA.
#include <cmath>

#include "core/philox.h"
#include "test_util.h"

namespace nsa {
namespace {

TEST(Philox, KnownAnswerVectors) {
  // Random123 kat_vectors, philox4x32_10.
  philox::Words z = philox::philox4x32_10({{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(z.w[0], 0x6627e8d5u);
  EXPECT_EQ(z.w[1], 0xe169c58du);
  EXPECT_EQ(z.w[2], 0xbc57ac4cu);
  EXPECT_EQ(z.w[3], 0x9b00dbd8u);
  philox::Words f =
      philox::philox4x32_10({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(f.w[0], 0x408f276du);
  EXPECT_EQ(f.w[1], 0x41c83b0eu);
  EXPECT_EQ(f.w[2], 0xa20bc7c6u);
  EXPECT_EQ(f.w[3], 0x6d5451fdu);
  philox::Words p =
      philox::philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(p.w[0], 0xd16cfe09u);
  EXPECT_EQ(p.w[1], 0x94fdccebu);
  EXPECT_EQ(p.w[2], 0x5001e420u);
  EXPECT_EQ(p.w[3], 0x24126ea1u);
}

TEST(Philox, TranscendentalsAreAccurate) {
  for (float x : {1.0f, 0.5f, 0.1f, 1e-7f, 0.999999f, 0x1p-24f})
    EXPECT_NEAR(philox::log_unit(x), std::log(x), 2e-6f * (1 + std::abs(std::log(x))));
  for (int i = 0; i < 1000; ++i) {
    const float v = static_cast<float>(i) / 1000.0f;
    float s, c;
    philox::sincos_2pi(v, &s, &c);
    EXPECT_NEAR(s, std::sin(2 * M_PI * v), 1e-6);
    EXPECT_NEAR(c, std::cos(2 * M_PI * v), 1e-6);
  }
}

TEST(Random, MomentsOfUniformAndNormal) {
  Generator g(42);
  const std::vector<double> u = to_vector<double>(rand({100000}, DType::f64, Device::cpu(), &g));
  const std::vector<double> n = to_vector<double>(randn({100000}, DType::f64, Device::cpu(), &g));
  double su = 0, sn = 0, sn2 = 0, umin = 1, umax = 0;
  for (double v : u) {
    su += v;
    umin = std::min(umin, v);
    umax = std::max(umax, v);
  }
  for (double v : n) {
    sn += v;
    sn2 += v * v;
  }
  EXPECT_NEAR(su / 1e5, 0.5, 0.005);
  EXPECT_GE(umin, 0.0);
  EXPECT_LT(umax, 1.0);
  EXPECT_NEAR(sn / 1e5, 0.0, 0.01);
  EXPECT_NEAR(sn2 / 1e5, 1.0, 0.01);
}

TEST(Random, StreamDependsOnlyOnSeedAndOffset) {
  Generator a(7), b(7), c(8);
  Tensor x = randn({1000}, DType::f32, Device::cpu(), &a);
  Tensor y = randn({1000}, DType::f32, Device::cpu(), &b);
  Tensor z = randn({1000}, DType::f32, Device::cpu(), &c);
  EXPECT_TRUE(test::equal_values(x, y));
  EXPECT_FALSE(test::equal_values(x, z));
  // Drawing in two halves gives the same numbers as one draw (the offsets are consecutive).
  Generator d(7);
  Tensor h1 = randn({500}, DType::f32, Device::cpu(), &d);
  Tensor h2 = randn({500}, DType::f32, Device::cpu(), &d);
  EXPECT_TRUE(test::equal_values(cat({h1, h2}, 0), x));
  EXPECT_EQ(d.offset(), 1000u);
}

TEST(Random, CudaMatchesCpuBitForBit) {
  NSA_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    Generator a(123), b(123);
    for (int64_t n : {1, 3, 1023, 100003}) {
      Tensor cpu_u = rand({n}, dt, Device::cpu(), &a);
      Tensor gpu_u = rand({n}, dt, Device::cuda(), &b);
      EXPECT_TRUE(test::equal_values(to(gpu_u, Device::cpu()), cpu_u))
          << "uniform " << dtype_name(dt) << " n=" << n;
      Tensor cpu_n = randn({n}, dt, Device::cpu(), &a);
      Tensor gpu_n = randn({n}, dt, Device::cuda(), &b);
      EXPECT_TRUE(test::equal_values(to(gpu_n, Device::cpu()), cpu_n))
          << "normal " << dtype_name(dt) << " n=" << n;
    }
    Tensor cpu_s = empty({777}, dt), gpu_s = empty({777}, dt, Device::cuda());
    normal_(cpu_s, 0.5, 0.02, &a);
    normal_(gpu_s, 0.5, 0.02, &b);
    EXPECT_TRUE(test::equal_values(to(gpu_s, Device::cpu()), cpu_s)) << "scaled normal " << dtype_name(dt);
  }
}

}  // namespace
}  // namespace nsa
