// The CPU backend's fast GEMM for f32 (and bf16, through f32 copies): register-tiled micro-kernels written
// with GCC vector extensions, compiled per instruction set and chosen at run time, output tiles spread
// over the thread pool (ops/cpu/parallel.h).
//
// Numerics: every output element is one f32 accumulator that starts at 0 and adds a[i,p]·b[p,j] for
// p = 0, 1, ..., k-1 in that order (a fused multiply-add in the avx2/avx512 kernels, a rounded product then a
// rounded sum in the portable one); then out = alpha·acc + beta·out in double, rounded once. So the bits do
// not depend on the thread count, the blocking, or avx2 vs avx512; the portable kernel differs from those
// two only by the fused rounding. The f64 reference loop in gemm.cpp stays the oracle.
#pragma once

#include "ops/backend.h"

namespace nsa::cpu {

enum class GemmKernel { portable, avx2, avx512 };

const char* gemm_kernel_name(GemmKernel kernel);
// Whether this CPU (and this build) can run `kernel`.
bool gemm_kernel_supported(GemmKernel kernel);
// The fastest supported kernel.
GemmKernel best_gemm_kernel();

// The GemmArgs contract of Backend::gemm for f32 or bf16 (out, a, b of one dtype), m, n, k, batch > 0.
void gemm_packed(const GemmArgs& args, GemmKernel kernel);

// The reference loop (gemm.cpp): any floating dtype, double accumulation, one rounding per element.
void gemm_reference(const GemmArgs& args);

}  // namespace nsa::cpu
