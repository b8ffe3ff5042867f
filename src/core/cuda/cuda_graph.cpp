// cuda::Graph: stream capture into a CUDA graph, with the allocator's private pool around the capture.
#include "core/cuda/allocator_pools.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda_api.h"

namespace nsa::cuda {

struct Graph::Impl {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaStream_t stream = nullptr;
  int pool = 0;
  bool capturing = false;
};

Graph::Graph() : impl_(std::make_unique<Impl>()) {}

Graph::~Graph() {
  if (impl_->capturing) {
    cudaGraph_t g = nullptr;
    (void)cudaStreamEndCapture(impl_->stream, &g);
    if (g) (void)cudaGraphDestroy(g);
    set_thread_pool(0);
  }
  if (impl_->exec) (void)cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) (void)cudaGraphDestroy(impl_->graph);
  if (impl_->pool) release_private_pool(impl_->pool);
}

void Graph::capture_begin() {
  NSA_CHECK(!impl_->capturing && !impl_->exec, "[graph] capture_begin on a graph that was already captured");
  impl_->stream = static_cast<cudaStream_t>(current_stream());
  impl_->pool = new_private_pool();
  set_thread_pool(impl_->pool);
  // Relaxed: a cache miss may still cudaMalloc (it enqueues nothing); host syncs remain errors.
  NSA_CUDA_CHECK(cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeRelaxed));
  impl_->capturing = true;
}

void Graph::capture_end() {
  NSA_CHECK(impl_->capturing, "[graph] capture_end without capture_begin");
  impl_->capturing = false;
  set_thread_pool(0);
  NSA_CUDA_CHECK(cudaStreamEndCapture(impl_->stream, &impl_->graph));
  NSA_CUDA_CHECK(cudaGraphInstantiate(&impl_->exec, impl_->graph, 0));
}

void Graph::replay() {
  NSA_CHECK(impl_->exec != nullptr, "[graph] replay before capture_end");
  NSA_CUDA_CHECK(cudaGraphLaunch(impl_->exec, static_cast<cudaStream_t>(current_stream())));
}

}  // namespace nsa::cuda
