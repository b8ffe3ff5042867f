// The CUDA backend's instance and shared binding helpers: status checks, dim collapsing, workspaces,
// the device error word.
#include "ops/cuda/cuda_backend.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "ops/cuda/binding.h"

namespace nsa {

Backend& cuda_backend() {
  static cuda_binding::CudaBackend backend;
  return backend;
}

namespace cuda_binding {

void check(const kernels::Status& s, const char* op) {
  if (s.ok()) return;
  if (s.what) NSA_FAIL("[", op, "] kernel launch rejected: ", s.what);
  NSA_FAIL("[", op, "] kernel launch failed: ", cudaGetErrorString(s.error));
}

kernels::Geometry collapse(const Dims& shape,
                           std::initializer_list<std::pair<const Tensor*, kernels::Strided*>> ops) {
  kernels::Geometry geo;
  geo.numel = shape.numel();
  // Dims kept (size > 1), innermost first, merged into the previous kept dim when every operand's stride
  // continues it.
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> strides(ops.size());
  for (int d = shape.size() - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    bool merge = !sizes.empty();
    size_t k = 0;
    for (const auto& [t, s] : ops) {
      (void)s;
      if (merge && t->strides()[d] != strides[k].back() * sizes.back()) merge = false;
      ++k;
    }
    if (merge) {
      sizes.back() *= shape[d];
      continue;
    }
    sizes.push_back(shape[d]);
    k = 0;
    for (const auto& [t, s] : ops) {
      (void)s;
      strides[k++].push_back(t->strides()[d]);
    }
  }
  geo.ndim = static_cast<int>(sizes.size());
  geo.contiguous = true;
  size_t k = 0;
  for (const auto& [t, s] : ops) {
    s->ptr = t->data_ptr();
    for (int i = 0; i < geo.ndim; ++i) {
      s->strides[i] = strides[k][geo.ndim - 1 - i];  // back to outermost first
      if (geo.ndim == 1 && s->strides[i] != 1) geo.contiguous = false;
    }
    ++k;
  }
  if (geo.ndim > 1) geo.contiguous = false;
  for (int i = 0; i < geo.ndim; ++i) geo.sizes[i] = sizes[geo.ndim - 1 - i];
  return geo;
}

Tensor workspace(size_t bytes, Device device) {
  return Tensor::empty({static_cast<int64_t>((bytes + 7) / 8)}, DType::i64, device);
}

namespace {
constexpr int kMaxDevices = 16;
std::mutex g_flag_mu;
std::array<unsigned*, kMaxDevices> g_flags{};
}  // namespace

unsigned* error_flag() {
  const int d = cuda::current_device();
  std::lock_guard<std::mutex> lock(g_flag_mu);
  if (!g_flags[d]) {
    NSA_CUDA_CHECK(cudaMalloc(&g_flags[d], sizeof(unsigned)));  // lives as long as the process
    NSA_CUDA_CHECK(cudaMemset(g_flags[d], 0, sizeof(unsigned)));
  }
  return g_flags[d];
}

void CudaBackend::check_errors() {
  unsigned* flag = error_flag();
  unsigned value = 0;
  NSA_CUDA_CHECK(cudaMemcpyAsync(&value, flag, sizeof(value), cudaMemcpyDeviceToHost, stream()));
  NSA_CUDA_CHECK(cudaStreamSynchronize(stream()));
  if (value == 0) return;
  NSA_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(unsigned), stream()));
  NSA_CHECK(!(value & kernels::kIndexOutOfRange),
            "[cuda] an index was out of range in embedding/index_select/gather/scatter/NSA block indices (those "
            "elements were skipped)");
  NSA_CHECK(!(value & kernels::kTargetOutOfRange),
            "[cross_entropy] a target was outside [0, vocab) and not ignore_index (those rows were skipped)");
}

}  // namespace cuda_binding
}  // namespace nsa
