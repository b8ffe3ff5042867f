// CUDA binding of Native Sparse Attention's primitives: not written yet. The kernels (a flash-style
// compressed branch, a fused selection that never materialises p_cmp, a group-centric selected branch;
// docs/nsa.md) are a later job. Until then every primitive fails with a one-line error naming the op, so
// an NSA model runs on the CPU only.
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {
namespace {

[[noreturn]] void not_yet(const char* op) {
  NSA_FAIL("[", op, "] not implemented yet on CUDA (the NSA kernels are a later job; run on the CPU)");
}

}  // namespace

void CudaBackend::nsa_cmp_attention(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    const NsaBlocks&, double) {
  not_yet("nsa_compressed_attention");
}

void CudaBackend::nsa_cmp_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                             const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                             const Tensor&, const NsaBlocks&, double) {
  not_yet("nsa_compressed_attention_backward");
}

void CudaBackend::nsa_select(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const NsaBlocks&,
                             double) {
  not_yet("nsa_select_blocks");
}

void CudaBackend::nsa_slc_attention(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    const Tensor&, const NsaBlocks&, double) {
  not_yet("nsa_selected_attention");
}

void CudaBackend::nsa_slc_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                             const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                             const Tensor&, const Tensor&, const NsaBlocks&, double) {
  not_yet("nsa_selected_attention_backward");
}

}  // namespace nsa::cuda_binding
