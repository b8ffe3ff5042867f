// CUDA binding of Native Sparse Attention's primitives (kernels/nsa/nsa.h; design in docs/nsa.md, "CUDA
// kernels"): Tensor → kernel params, workspaces from the caching allocator, launches on the current stream.
// bf16 with head dims (64, 64), (128, 128) or (192, 128) runs on tensor cores; other dtypes and dims run
// the kernels' CUDA-core path (double accumulation). Duplicate block indices are not rejected on CUDA (the
// CPU reference rejects them): a repeated block would be attended twice.
#include "kernels/nsa/nsa.h"

#include "ops/cuda/binding.h"
#include "ops/cuda/cuda_backend.h"

namespace nsa::cuda_binding {
namespace {

kernels::NsaGeometry geometry(const NsaBlocks& nb) {
  return {nb.cmp_block, nb.cmp_stride, nb.slc_block, nb.top_n, nb.init_blocks, nb.local_blocks};
}

// q [B, T, Hq, Dk], k [B, S, Hkv, Dk], v [B, S, Hkv, Dv].
kernels::NsaSizes sizes(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), k.size(1), q.size(3), v.size(3)};
}

kernels::NsaBackwardParams backward_params(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                           const Tensor& dout, const Tensor& q, const Tensor& k,
                                           const Tensor& v, const Tensor& out, const Tensor& lse,
                                           const NsaBlocks& blocks, double scale) {
  kernels::NsaBackwardParams p{};
  p.dtype = scalar(q.dtype());
  p.sz = sizes(q, k, v);
  p.geo = geometry(blocks);
  p.scale = scale;
  p.dout = dout.data_ptr();
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  p.lse = lse.data_ptr();
  p.dq = dq.data_ptr();
  p.dk = dk.data_ptr();
  p.dv = dv.data_ptr();
  return p;
}

}  // namespace

void CudaBackend::nsa_cmp_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& kc,
                                    const Tensor& vc, const NsaBlocks& blocks, double scale) {
  const kernels::NsaCmpForwardParams p{scalar(q.dtype()), sizes(q, kc, vc), geometry(blocks), scale,
                                       q.data_ptr(),      kc.data_ptr(),    vc.data_ptr(),    out.data_ptr(),
                                       lse.data_ptr()};
  check(kernels::launch_nsa_cmp_forward(p, stream()), "nsa_compressed_attention");
}

void CudaBackend::nsa_cmp_attention_backward(const Tensor& dq, const Tensor& dkc, const Tensor& dvc,
                                             const Tensor& dout, const Tensor& q, const Tensor& kc,
                                             const Tensor& vc, const Tensor& out, const Tensor& lse,
                                             const NsaBlocks& blocks, double scale,
                                             const AttentionGradOptions& opt) {
  kernels::NsaBackwardParams p = backward_params(dq, dkc, dvc, dout, q, kc, vc, out, lse, blocks, scale);
  p.delta_in = given_row_sums(opt, p.sz.batch * p.sz.heads_q * p.sz.seq);
  const bool native = !opt.accumulate_dq || kernels::nsa_cmp_backward_accumulates(p);
  p.accumulate_dq = opt.accumulate_dq && native;
  const Tensor ws = workspace(kernels::nsa_cmp_backward_workspace(p), q.device());
  p.workspace = ws.data_ptr();
  write_or_accumulate_dq(*this, dq, !native, [&](const Tensor& target) {
    p.dq = target.data_ptr();
    check(kernels::launch_nsa_cmp_backward(p, stream()), "nsa_compressed_attention_backward");
  });
}

void CudaBackend::nsa_select(const Tensor& indices, const Tensor& q, const Tensor& kc, const Tensor& lse,
                             const NsaBlocks& blocks, double scale) {
  kernels::NsaSelectParams p{};
  p.dtype = scalar(q.dtype());
  p.sz = sizes(q, kc, kc);
  p.geo = geometry(blocks);
  p.scale = scale;
  p.q = q.data_ptr();
  p.kc = kc.data_ptr();
  p.lse = lse.data_ptr();
  p.indices = indices.data<int32_t>();
  const Tensor ws = workspace(kernels::nsa_select_workspace(p), q.device());
  p.workspace = ws.data_ptr();
  check(kernels::launch_nsa_select(p, stream()), "nsa_select_blocks");
}

void CudaBackend::nsa_slc_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& indices, const NsaBlocks& blocks,
                                    double scale) {
  const kernels::NsaSlcForwardParams p{scalar(q.dtype()),
                                       sizes(q, k, v),
                                       geometry(blocks),
                                       scale,
                                       q.data_ptr(),
                                       k.data_ptr(),
                                       v.data_ptr(),
                                       indices.data_ptr(),
                                       scalar(indices.dtype()),
                                       indices.size(3),
                                       out.data_ptr(),
                                       lse.data_ptr(),
                                       error_flag()};
  check(kernels::launch_nsa_slc_forward(p, stream()), "nsa_selected_attention");
}

void CudaBackend::nsa_slc_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                             const Tensor& dout, const Tensor& q, const Tensor& k,
                                             const Tensor& v, const Tensor& indices, const Tensor& out,
                                             const Tensor& lse, const NsaBlocks& blocks, double scale,
                                             const AttentionGradOptions& opt) {
  kernels::NsaBackwardParams p = backward_params(dq, dk, dv, dout, q, k, v, out, lse, blocks, scale);
  p.indices = indices.data_ptr();
  p.index_type = scalar(indices.dtype());
  p.n_indices = indices.size(3);
  p.error_flag = error_flag();
  p.delta_in = given_row_sums(opt, p.sz.batch * p.sz.heads_q * p.sz.seq);
  const bool native = !opt.accumulate_dq || kernels::nsa_slc_backward_accumulates(p);
  p.accumulate_dq = opt.accumulate_dq && native;
  const Tensor ws = workspace(kernels::nsa_slc_backward_workspace(p), q.device());
  p.workspace = ws.data_ptr();
  write_or_accumulate_dq(*this, dq, !native, [&](const Tensor& target) {
    p.dq = target.data_ptr();
    check(kernels::launch_nsa_slc_backward(p, stream()), "nsa_selected_attention_backward");
  });
}

}  // namespace nsa::cuda_binding
