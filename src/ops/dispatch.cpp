// backend_for: the one place that maps a device to its backend.
#include "core/cuda_api.h"
#include "ops/backend.h"
#include "ops/cpu/cpu_backend.h"

namespace nsa {

#ifdef NSA_WITH_CUDA
Backend& cuda_backend();  // ops/cuda/cuda_backend.cpp
#endif

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) return cpu_backend();
#ifdef NSA_WITH_CUDA
  NSA_CHECK(cuda::available(), "[device] ", device.str(), " requested but no CUDA device is present");
  return cuda_backend();
#else
  NSA_FAIL("[device] ", device.str(), " requested but nsa-train was built without CUDA (-DNSA_CUDA=OFF)");
#endif
}

void check_device_errors(Device device) { backend_for(device).check_errors(); }

}  // namespace nsa
