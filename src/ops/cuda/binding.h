// Helpers of the CUDA backend's bindings (Tensor -> kernel params). CUDA-only code: includes the kernels'
// launcher headers and the CUDA runtime.
#pragma once

#include <cuda_runtime.h>

#include <initializer_list>

#include "core/cuda_api.h"
#include "core/tensor.h"
#include "kernels/common/kernel_common.h"
#include "kernels/elementwise/elementwise.h"
#include "ops/backend.h"

namespace nsa::cuda_binding {

inline kernels::ScalarType scalar(DType t) { return static_cast<kernels::ScalarType>(static_cast<int>(t)); }
inline cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::current_stream()); }

// Throws nsa::Error naming the op when a launcher failed.
void check(const kernels::Status& s, const char* op);

// Geometry of an elementwise launch over `shape`, filling each operand's Strided with collapsed strides:
// size-1 dims dropped, adjacent dims merged where every operand's strides allow.
kernels::Geometry collapse(const Dims& shape,
                           std::initializer_list<std::pair<const Tensor*, kernels::Strided*>> ops);

// Scratch memory from the caching allocator (freed, stream-ordered, when the returned tensor goes).
Tensor workspace(size_t bytes, Device device);

// The device word kernels set bad-input flags in (kernels::DeviceError), one per device.
unsigned* error_flag();

// A caller's attention row sums (AttentionGradOptions::delta) when the kernels can take them: f32 with one
// value per of the `rows` = B·Hq·T rows; else nullptr (the kernels form their own).
inline float* given_row_sums(const AttentionGradOptions& opt, int64_t rows) {
  return opt.delta != nullptr && opt.delta->dtype() == DType::f32 && opt.delta->numel() == rows
             ? opt.delta->data<float>()
             : nullptr;
}

}  // namespace nsa::cuda_binding
