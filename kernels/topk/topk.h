// Top-k over the last dim of contiguous [rows, n]: values in descending order with their i64 indices,
// ties broken by the lower index (the CPU reference's order). One block per row runs k rounds; round j
// finds, with a block-wide argmax, the best element ordered after round j−1's pick. O(k·n) reads per row
// (from L1 after the first): meant for routing (n ≤ a few hundred experts) and block selection
// (k ≈ 16, n ≤ a few thousand blocks).
#pragma once

#include "kernels/common/kernel_common.h"

namespace nsa::kernels {

struct TopkParams {
  ScalarType dtype;
  const void* in;
  void* values;
  int64_t* indices;
  int64_t rows, n, k;
};

Status launch_topk(const TopkParams& p, cudaStream_t stream);

}  // namespace nsa::kernels
