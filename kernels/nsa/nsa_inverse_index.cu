// The selected branch's inverse index: which tokens chose each selection block. The dK/dV kernels walk it
// block-outer, so every key row is written by one program and no floating-point atomics are needed.
//
// One sort key x·T + t per (token, slot) that names a visible block (x = j·B·Hkv + b·Hkv + g: block-major,
// so the lists of block 0, which every token selects, come first and start first); integer atomics count
// each list, a radix sort orders the keys (lists contiguous, tokens ascending), a scan gives the list
// starts. Every step is deterministic.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "kernels/nsa/nsa_device.cuh"
#include "kernels/nsa/nsa_internal.h"

namespace nsa::kernels::nsa_impl {
namespace {

constexpr uint64_t kNoKey = ~uint64_t{0};

template <class I>
__global__ void inverse_keys_kernel(const I* __restrict__ indices, uint64_t* __restrict__ keys,
                                    int* __restrict__ counts, int* __restrict__ slot_keys, NsaSizes sz,
                                    int64_t n, int64_t n_slc, int64_t slc_block, unsigned* flag) {
  const int64_t total = sz.batch * sz.seq * sz.heads_kv * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / n, g = row % sz.heads_kv, t = (row / sz.heads_kv) % sz.seq;
    const int64_t b = row / (sz.heads_kv * sz.seq);
    const int64_t j = static_cast<int64_t>(indices[e]);
    uint64_t key = kNoKey;
    if (j < -1 || j >= n_slc) {
      if (flag) atomicOr(flag, kIndexOutOfRange);
    } else if (j >= 0 && j * slc_block <= t) {
      const int64_t x = j * sz.batch * sz.heads_kv + b * sz.heads_kv + g;
      key = static_cast<uint64_t>(x) * static_cast<uint64_t>(sz.seq) + static_cast<uint64_t>(t);
      atomicAdd(counts + x, 1);
    }
    keys[e] = key;
    if (slot_keys) slot_keys[e] = static_cast<int>(e % n);
  }
}

// Invalid entries (kNoKey) have every bit set, so sorting only the low bits that valid keys use would mix
// them in: sort the valid keys' bit range plus one bit, which puts them last.
int sort_end_bit(int64_t lists, int64_t seq) {
  const uint64_t max_key = static_cast<uint64_t>(lists) * static_cast<uint64_t>(seq);
  int bits = 1;
  while (bits < 64 && (max_key >> bits) != 0) ++bits;
  return bits < 64 ? bits + 1 : 64;
}

}  // namespace

InverseIndex inverse_index_layout(const NsaBackwardParams& p, bool with_slots) {
  InverseIndex ix;
  ix.with_slots = with_slots;
  ix.lists = ceil_div(p.sz.seq, p.geo.slc_block) * p.sz.batch * p.sz.heads_kv;
  ix.entries = p.sz.batch * p.sz.seq * p.sz.heads_kv * p.n_indices;
  size_t sort_bytes = 0, scan_bytes = 0;
  if (with_slots) {
    cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const uint64_t*>(nullptr),
                                    static_cast<uint64_t*>(nullptr), static_cast<const int*>(nullptr),
                                    static_cast<int*>(nullptr), ix.entries, 0,
                                    sort_end_bit(ix.lists, p.sz.seq));
  } else {
    cub::DeviceRadixSort::SortKeys(nullptr, sort_bytes, static_cast<const uint64_t*>(nullptr),
                                   static_cast<uint64_t*>(nullptr), ix.entries, 0,
                                   sort_end_bit(ix.lists, p.sz.seq));
  }
  cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, static_cast<const int*>(nullptr),
                                static_cast<int*>(nullptr), ix.lists + 1);
  ix.temp_bytes = sort_bytes > scan_bytes ? sort_bytes : scan_bytes;
  return ix;
}

Status build_inverse_index(const NsaBackwardParams& p, const InverseIndex& ix, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(ix.counts, 0, sizeof(int) * static_cast<size_t>(ix.lists + 1), stream);
  if (e != cudaSuccess) return {e, nullptr};
  if (ix.entries > 0) {
    const int64_t n_slc = ceil_div(p.sz.seq, p.geo.slc_block);
    const unsigned grid = grid_for(ix.entries, 256);
    const bool ok = dispatch_index(p.index_type, [&]<class I>() {
      inverse_keys_kernel<I><<<grid, 256, 0, stream>>>(static_cast<const I*>(p.indices), ix.keys, ix.counts,
                                                       ix.with_slots ? ix.slot_keys : nullptr, p.sz,
                                                       p.n_indices, n_slc, p.geo.slc_block, p.error_flag);
    });
    if (!ok) return invalid("NSA block indices must be i32 or i64");
    if (Status s = last_launch(); !s.ok()) return s;
    size_t temp = ix.temp_bytes;
    e = ix.with_slots
            ? cub::DeviceRadixSort::SortPairs(ix.temp, temp, ix.keys, ix.sorted, ix.slot_keys, ix.slots,
                                              ix.entries, 0, sort_end_bit(ix.lists, p.sz.seq), stream)
            : cub::DeviceRadixSort::SortKeys(ix.temp, temp, ix.keys, ix.sorted, ix.entries, 0,
                                             sort_end_bit(ix.lists, p.sz.seq), stream);
    if (e != cudaSuccess) return {e, nullptr};
  }
  size_t temp = ix.temp_bytes;
  e = cub::DeviceScan::ExclusiveSum(ix.temp, temp, ix.counts, ix.row_start, ix.lists + 1, stream);
  return {e, nullptr};
}

}  // namespace nsa::kernels::nsa_impl
