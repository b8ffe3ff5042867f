// What every kernel launcher shares: the element type codes, strided operand descriptors, the launch
// Status, and the device error flags. Launchers take plain pointers, sizes and int64 strides (no framework
// types) and a stream, and return a Status instead of throwing.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/op_codes.h"

namespace nsa::kernels {

// Same numbering as nsa::DType.
enum class ScalarType : int { f64 = 0, f32 = 1, bf16 = 2, i32 = 3, i64 = 4 };
inline constexpr int kMaxDims = 8;

// One operand of an elementwise kernel: base pointer (offset applied) and strides over the shared sizes.
struct Strided {
  void* ptr = nullptr;
  int64_t strides[kMaxDims] = {};
};

// Bits of the device error word (see src/ops/cuda: checked at sync points, never in the step).
enum DeviceError : unsigned {
  kIndexOutOfRange = 1u,   // embedding / index_select / gather / scatter saw an index outside [0, n)
  kTargetOutOfRange = 2u,  // cross_entropy saw a target outside [0, vocab) that is not ignore_index
};

struct Status {
  cudaError_t error = cudaSuccess;
  const char* what = nullptr;  // a static string when the launcher rejected its parameters
  bool ok() const { return error == cudaSuccess && what == nullptr; }
};

// The status of the last launch.
inline Status last_launch() {
  const cudaError_t e = cudaGetLastError();
  return {e, nullptr};
}
inline Status invalid(const char* what) { return {cudaErrorInvalidValue, what}; }

// Number of multiprocessors of the current device (cached).
int sm_count();

}  // namespace nsa::kernels
