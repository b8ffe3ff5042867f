// Philox4x32-10 counter-based RNG (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11)
// and the transforms to uniform and normal floats. Compiled both by the host compiler and by nvcc, so the
// CPU backend and the CUDA kernels produce the same bits for the same (seed, offset).
//
// Bit-exactness across devices: every float operation below is an explicitly rounded IEEE op (__fmul_rn
// etc. on the device; the host build uses -ffp-contract=off), and log/sin/cos are our own polynomials, not
// the libm/CUDA math functions (whose last-bit results differ between the two).
//
// Stream layout: element e (the tensor's offset into the generator's stream plus its linear index) takes
// word e%4 of philox(counter = e/4, key = seed). Normals pair words (0,1) and (2,3) by Box-Muller.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define NSA_HD __host__ __device__ __forceinline__
#else
#define NSA_HD inline
#endif

namespace nsa::philox {

struct Words {
  uint32_t w[4];
};

NSA_HD uint32_t mul_hi_lo(uint32_t a, uint32_t b, uint32_t* hi) {
#if defined(__CUDA_ARCH__)
  *hi = __umulhi(a, b);
  return a * b;
#else
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
#endif
}

// Ten rounds of Philox4x32 on counter `c` with key (k0, k1).
NSA_HD Words philox4x32_10(Words c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mul_hi_lo(0xD2511F53u, c.w[0], &hi0);
    const uint32_t lo1 = mul_hi_lo(0xCD9E8D57u, c.w[2], &hi1);
    c = Words{{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// The four words of the block that holds element `e` of the stream keyed by `seed`.
NSA_HD Words block(uint64_t seed, uint64_t e) {
  const uint64_t b = e >> 2;
  return philox4x32_10(Words{{static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), 0u, 0u}},
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// ---- explicitly rounded float arithmetic (identical on host and device) ----
NSA_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
NSA_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
NSA_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
NSA_HD float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
NSA_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
NSA_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
NSA_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Uniform in [0, 1) with 24 random bits; and in (0, 1] for the logarithm of Box-Muller.
NSA_HD float uniform_co(uint32_t x) { return static_cast<float>(x >> 8) * 0x1p-24f; }
NSA_HD float uniform_oc(uint32_t x) { return static_cast<float>((x >> 8) + 1u) * 0x1p-24f; }

// Natural log for x in [2^-24, 1]: x = m·2^e with m in [√½, √2], log m = 2·atanh(s), s = (m-1)/(m+1).
// |s| ≤ 0.172, so six terms of the atanh series leave an error far below one f32 ulp.
NSA_HD float log_unit(float x) {
  const uint32_t u = float_bits(x);
  int e = static_cast<int>((u >> 23) & 0xffu) - 127;
  float m = bits_float((u & 0x7fffffu) | 0x3f800000u);
  if (m > 1.41421356f) {
    m = mul_rn(m, 0.5f);
    e += 1;
  }
  const float f = add_rn(m, -1.0f);
  const float s = div_rn(f, add_rn(2.0f, f));
  const float z = mul_rn(s, s);
  float p = 1.0f / 11.0f;
  p = fma_rn(p, z, 1.0f / 9.0f);
  p = fma_rn(p, z, 1.0f / 7.0f);
  p = fma_rn(p, z, 1.0f / 5.0f);
  p = fma_rn(p, z, 1.0f / 3.0f);
  p = fma_rn(p, z, 1.0f);
  return fma_rn(static_cast<float>(e), 0.693147180559945309f, mul_rn(mul_rn(2.0f, s), p));
}

// sin and cos of 2πv for v in [0, 1): split into quadrant and a remainder angle in [0, π/4], then
// Taylor polynomials (error < 1e-9 on that interval).
NSA_HD void sincos_2pi(float v, float* s_out, float* c_out) {
  const float t = mul_rn(v, 4.0f);
  const float q = static_cast<float>(static_cast<int>(t));  // t ≥ 0: truncation is floor
  const int quadrant = static_cast<int>(q) & 3;
  float r = add_rn(t, -q);  // in [0, 1), exact
  const bool flip = r > 0.5f;
  if (flip) r = add_rn(1.0f, -r);
  const float a = mul_rn(r, 1.57079632679489662f);
  const float z = mul_rn(a, a);
  float ps = -1.0f / 39916800.0f;
  ps = fma_rn(ps, z, 1.0f / 362880.0f);
  ps = fma_rn(ps, z, -1.0f / 5040.0f);
  ps = fma_rn(ps, z, 1.0f / 120.0f);
  ps = fma_rn(ps, z, -1.0f / 6.0f);
  ps = fma_rn(ps, z, 1.0f);
  float sa = mul_rn(a, ps);
  float pc = -1.0f / 3628800.0f;
  pc = fma_rn(pc, z, 1.0f / 40320.0f);
  pc = fma_rn(pc, z, -1.0f / 720.0f);
  pc = fma_rn(pc, z, 1.0f / 24.0f);
  pc = fma_rn(pc, z, -0.5f);
  float ca = fma_rn(pc, z, 1.0f);
  if (flip) {
    const float tmp = sa;
    sa = ca;
    ca = tmp;
  }
  switch (quadrant) {
    case 0:
      *s_out = sa;
      *c_out = ca;
      break;
    case 1:
      *s_out = ca;
      *c_out = -sa;
      break;
    case 2:
      *s_out = -sa;
      *c_out = -ca;
      break;
    default:
      *s_out = -ca;
      *c_out = sa;
      break;
  }
}

// Element e of the uniform [0, 1) stream.
NSA_HD float uniform(uint64_t seed, uint64_t e) { return uniform_co(block(seed, e).w[e & 3]); }

// Element e of the standard normal stream (Box-Muller on the word pair that holds e).
NSA_HD float normal(uint64_t seed, uint64_t e) {
  const Words b = block(seed, e);
  const int pair = static_cast<int>(e & 2);
  const float radius = sqrt_rn(mul_rn(-2.0f, log_unit(uniform_oc(b.w[pair]))));
  float s, c;
  sincos_2pi(uniform_co(b.w[pair + 1]), &s, &c);
  return mul_rn(radius, (e & 1) ? s : c);
}

}  // namespace nsa::philox
