// What the multi-tensor optimizer kernels share: tensors are cut into fixed chunks of kChunkElements; a
// launch carries a small table of tensors in its kernel arguments (one __grid_constant__ struct, so no
// host-to-device copy and nothing that breaks CUDA graph capture), with the prefix counts of their chunks;
// each block walks chunks with a grid stride and finds a chunk's tensor by binary search in the table.
#pragma once

#include <cstdint>

#include "kernels/common/device_utils.cuh"

namespace nsa::kernels::multi_tensor {

// A multiple of 4, so every chunk of a 16-byte aligned tensor starts 16-byte aligned.
inline constexpr int64_t kChunkElements = 8192;
inline constexpr int kThreads = 256;
static_assert(kChunkElements % 4 == 0);

inline int64_t chunks_of(int64_t numel) { return (numel + kChunkElements - 1) / kChunkElements; }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The tensor k with chunk_begin[k] <= chunk < chunk_begin[k + 1] (chunk_begin has count + 1 entries,
// non-decreasing; empty tensors own no chunk).
__device__ __forceinline__ int tensor_of_chunk(const int64_t* chunk_begin, int count, int64_t chunk) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (chunk_begin[mid] <= chunk) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Blocks for `chunks` chunks: enough to fill the GPU a few times over, no more than there are chunks.
inline unsigned grid_for_chunks(int64_t chunks) {
  const int64_t cap = static_cast<int64_t>(sm_count()) * 4;
  return static_cast<unsigned>(chunks < 1 ? 1 : (chunks < cap ? chunks : cap));
}

}  // namespace nsa::kernels::multi_tensor
