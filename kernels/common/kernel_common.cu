#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

int sm_count() {
  static thread_local int cached_device = -1;
  static thread_local int cached = 0;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 1;
  if (device != cached_device) {
    int n = 1;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) n = 1;
    cached = n;
    cached_device = device;
  }
  return cached;
}

}  // namespace nsa::kernels
