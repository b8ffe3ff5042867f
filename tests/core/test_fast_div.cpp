// FastDiv (kernels/common/fast_div.h), the multiply-high division the NSA selection kernel uses per key tile,
// against the integer division it replaces: every divisor up to 1024 with numerators around each multiple of
// it and near 2^31, and random pairs.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "kernels/common/fast_div.h"

namespace {

using nsa::kernels::FastDiv;

TEST(FastDiv, MatchesIntegerDivision) {
  int64_t checked = 0;
  for (int d = 1; d <= 1024; ++d) {
    const FastDiv f = FastDiv::of(d);
    auto check = [&](int64_t a) {
      if (a < 0 || a > INT32_MAX) return;
      ASSERT_EQ(f.div(static_cast<int>(a)), static_cast<int>(a / d)) << a << " / " << d;
      ++checked;
    };
    for (int64_t a = 0; a < 4 * d + 3; ++a) check(a);
    for (int64_t q : {int64_t{1000}, int64_t{65536}, int64_t{1} << 20, (int64_t{1} << 31) / d - 1})
      for (int64_t off = -1; off <= 1; ++off) check(q * d + off);
    for (int64_t a = INT32_MAX - 2 * d; a <= INT32_MAX; ++a) check(a);
  }
  std::mt19937_64 gen(7);
  for (int i = 0; i < 200000; ++i) {
    const int64_t d = 1 + static_cast<int64_t>(gen() % 100000),
                  a = static_cast<int64_t>(gen() % (int64_t{1} << 31));
    ASSERT_EQ(FastDiv::of(d).div(static_cast<int>(a)), static_cast<int>(a / d)) << a << " / " << d;
    ++checked;
  }
  EXPECT_GT(checked, 1000000);
  // A wrong multiplier must be caught (the check above is not vacuous).
  FastDiv bad = FastDiv::of(7);
  bad.m -= 1000;
  bool differs = false;
  for (int a = 0; a < (1 << 30) && !differs; a += 9973) differs = bad.div(a) != a / 7;
  EXPECT_TRUE(differs);
}

}  // namespace
