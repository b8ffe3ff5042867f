// Division of a non-negative int below 2^31 by a divisor fixed for a launch: a multiply-high by
// m = ceil(2^32 / d) and one correction, instead of the ~20 instructions of an integer division by a runtime
// value (the NSA selection kernel divides by block lengths every key tile and is bound by instruction issue).
// Exact: m·a / 2^32 exceeds a / d by less than a / 2^32 < 1/2, so the estimate is the quotient or one more,
// and the correction takes the one more back. Host and device (tests/core/test_fast_div.cpp checks it on
// the CPU against the division it replaces).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define NSA_FAST_DIV_HD __host__ __device__ __forceinline__
#else
#define NSA_FAST_DIV_HD inline
#endif

namespace nsa::kernels {

struct FastDiv {
  uint32_t d = 1, m = 0;  // m = 0 for d = 1 (2^32 does not fit; div returns a)

  static FastDiv of(int64_t divisor) {
    FastDiv f;
    f.d = static_cast<uint32_t>(divisor);
    f.m = f.d > 1 ? static_cast<uint32_t>(((uint64_t{1} << 32) + f.d - 1) / f.d) : 0;
    return f;
  }

  NSA_FAST_DIV_HD int div(int a) const {
    if (d == 1) return a;
#if defined(__CUDA_ARCH__)
    uint32_t q = __umulhi(static_cast<uint32_t>(a), m);
#else
    uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(a)) * m) >> 32);
#endif
    q -= q * d > static_cast<uint32_t>(a) ? 1u : 0u;
    return static_cast<int>(q);
  }
};

}  // namespace nsa::kernels
