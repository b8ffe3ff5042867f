// Host-side pieces the NSA kernel files share (kernels/nsa/*.cu only): the CUDA-core fallback path, the
// row statistics of the backward (delta = rowsum(dO ∘ O)), and the inverse index of the selected branch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/nsa/nsa.h"

namespace nsa::kernels::nsa_impl {

// Whether the Hopper wgmma kernels can run: this build holds sm_90a code and the current device has compute
// capability 9.0 (cached per device).
bool wgmma_available();

// CUDA-core path (any float dtype, head dims <= 256, any group size), accumulating in double.
inline constexpr int64_t kSimtMaxDim = 256;
Status simt_cmp_forward(const NsaCmpForwardParams& p, cudaStream_t stream);
Status simt_slc_forward(const NsaSlcForwardParams& p, cudaStream_t stream);
// scratch: B·T·Hkv·ceil(T / slc_block) doubles.
size_t simt_select_scratch(const NsaSelectParams& p);
Status simt_select(const NsaSelectParams& p, void* scratch, cudaStream_t stream);
// delta: double [B, Hq, T] from row_delta<double>. For the selected branch, row_start/sorted come from
// build_inverse_index.
Status simt_cmp_backward(const NsaBackwardParams& p, const double* delta, cudaStream_t stream);
Status simt_slc_backward(const NsaBackwardParams& p, const double* delta, const int* row_start,
                         const uint64_t* sorted, cudaStream_t stream);

// delta[b, h, t] = Σ_d dO[b, t, h, d] · O[b, t, h, d] (the lse layout), in D (float or double).
template <class D>
Status row_delta(const NsaBackwardParams& p, D* delta, cudaStream_t stream);

// Inverse index of a selection: for each list x = j·(B·Hkv) + b·Hkv + g (selection block j of batch b and
// KV head g), the tokens t that selected j and see at least one of its tokens (j·slc_block <= t), as sorted
// keys x·T + t: list x is sorted[row_start[x] .. row_start[x + 1]), in increasing t. Deterministic (integer
// counts, radix sort). Out-of-range indices set kIndexOutOfRange in p.error_flag and are skipped. With
// with_slots the sort also carries each entry's slot s (its position in the token's selection) into slots[].
struct InverseIndex {
  int64_t lists = 0;           // X = ceil(T / slc_block) · B · Hkv
  int64_t entries = 0;         // upper bound: B · T · Hkv · n_indices
  int* counts = nullptr;       // [X + 1]
  int* row_start = nullptr;    // [X + 1]
  uint64_t* keys = nullptr;    // [entries]
  uint64_t* sorted = nullptr;  // [entries]
  void* temp = nullptr;        // cub scratch
  size_t temp_bytes = 0;
  bool with_slots = false;
  int* slot_keys = nullptr;  // [entries] (with_slots)
  int* slots = nullptr;      // [entries], in the order of sorted (with_slots)
};
// Sizes the index (pointers left null) for p.
InverseIndex inverse_index_layout(const NsaBackwardParams& p, bool with_slots = false);
Status build_inverse_index(const NsaBackwardParams& p, const InverseIndex& ix, cudaStream_t stream);

}  // namespace nsa::kernels::nsa_impl
