#include <gtest/gtest.h>

#include "core/dims.h"
#include "core/error.h"

namespace nsa {
namespace {

TEST(Dims, BasicsAndStrides) {
  Dims d{2, 3, 4};
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.numel(), 24);
  EXPECT_EQ(d.str(), "[2, 3, 4]");
  EXPECT_EQ(contiguous_strides(d), (Dims{12, 4, 1}));
  d.insert(1, 7);
  EXPECT_EQ(d, (Dims{2, 7, 3, 4}));
  d.erase(0);
  EXPECT_EQ(d, (Dims{7, 3, 4}));
  EXPECT_EQ(Dims{}.numel(), 1);
}

TEST(Dims, WrapDimAndLimits) {
  EXPECT_EQ(wrap_dim(-1, 3, "t"), 2);
  EXPECT_EQ(wrap_dim(0, 3, "t"), 0);
  EXPECT_THROW(wrap_dim(3, 3, "t"), Error);
  EXPECT_THROW(wrap_dim(-4, 3, "t"), Error);
  EXPECT_THROW((Dims{1, 2, 3, 4, 5, 6, 7, 8, 9}), Error);
}

}  // namespace
}  // namespace nsa
