// Private pools of the CUDA caching allocator, for cuda::Graph (core/cuda/cuda_graph.cpp).
#pragma once

namespace nsa::cuda {

int new_private_pool();
// Allocations of this thread come from `pool` (0: the shared cache) until set back.
void set_thread_pool(int pool);
// Returns the pool's blocks to the shared cache (its graph is gone).
void release_private_pool(int pool);

}  // namespace nsa::cuda
