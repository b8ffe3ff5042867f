// Elementwise kernels: unary and binary maths (op codes in kernels/common/op_codes.h), the fused SwiGLU
// backward, copies with dtype conversion, fill, and Philox random fills.
//
// Geometry: all operands share `sizes` (ndim dims, already collapsed by the caller: adjacent dims merged
// where every operand allows, size-1 dims dropped). When `contiguous`, every operand is dense over them and
// the kernels use 16-byte vector loads where the pointers allow; otherwise each element's offsets are
// computed from the strides (0 for broadcast).
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct Geometry {
  int64_t numel = 0;
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  bool contiguous = false;
};

struct UnaryParams {
  UnaryOp op;
  double alpha;  // add_scalar / mul_scalar / pow_scalar
  ScalarType dtype;
  Geometry geo;
  Strided out, a;
};

struct BinaryParams {
  BinaryOp op;
  ScalarType dtype;
  Geometry geo;
  Strided out, a, b;
};

// ga = g·b·silu'(a), gb = g·silu(a).
struct SwigluBackwardParams {
  ScalarType dtype;
  Geometry geo;
  Strided ga, gb, g, a, b;
};

struct CopyParams {
  ScalarType dst_type, src_type;
  Geometry geo;
  Strided dst, src;
};

struct FillParams {
  ScalarType dtype;
  Geometry geo;
  Strided dst;
  double value;
};

// Contiguous dst; element i = philox element (offset + i) of `seed` (core/philox.h), scaled:
// uniform: a + u·(b − a); normal: a + n·b. Identical bits to the CPU backend.
struct RandomParams {
  ScalarType dtype;
  RandomDist dist;
  void* dst;
  int64_t numel;
  uint64_t seed, offset;
  float a, b;
};

Status launch_unary(const UnaryParams& p, cudaStream_t stream);
Status launch_binary(const BinaryParams& p, cudaStream_t stream);
Status launch_swiglu_backward(const SwigluBackwardParams& p, cudaStream_t stream);
Status launch_copy(const CopyParams& p, cudaStream_t stream);
Status launch_fill(const FillParams& p, cudaStream_t stream);
Status launch_random(const RandomParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
