// The CPU reference backend: every Backend primitive as plain loops, accumulating in double (except the
// f32/bf16 GEMM, which accumulates in f32: ops/cpu/gemm_packed.h), hot loops split over the thread pool
// (ops/cpu/parallel.h) without changing any result's bits. Its definitions are spread over ops/cpu/*.cpp,
// one file per op family.
#pragma once

#include "ops/backend.h"

namespace nsa::cpu {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  void copy(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& dst, double value) override;
  void random(const Tensor& dst, RandomDist dist, uint64_t seed, uint64_t offset, double a,
              double b) override;
  void unary(UnaryOp op, const Tensor& out, const Tensor& a, double alpha) override;
  void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) override;
  void swiglu_backward(const Tensor& ga, const Tensor& gb, const Tensor& g, const Tensor& a,
                       const Tensor& b) override;
  void reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in, int64_t outer,
              int64_t n, int64_t inner, double scale) override;
  void softmax(const Tensor& out, const Tensor& in, bool log) override;
  void softmax_backward(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) override;
  void cross_entropy(const Tensor& loss, const Tensor& lse, const Tensor& count, const Tensor& logits,
                     const Tensor& targets, int64_t ignore_index) override;
  void cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                              const Tensor& targets, const Tensor& lse, const Tensor& count,
                              int64_t ignore_index) override;
  void rms_norm(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                double eps) override;
  void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_y,
                         const Tensor& x, const Tensor& weight, const Tensor& rstd) override;
  void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, int64_t rot_dim,
            bool inverse) override;
  void topk(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k) override;
  void index_select(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer, int64_t n,
                    int64_t inner) override;
  void index_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                 int64_t inner) override;
  void gather(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer, int64_t n,
              int64_t inner) override;
  void scatter_add(const Tensor& dst, const Tensor& index, const Tensor& src, int64_t outer, int64_t n,
                   int64_t inner) override;
  void shard_index(const Tensor& local, const Tensor& mask, const Tensor& ids, int64_t begin,
                   int64_t count) override;
  void gemm(const GemmArgs& args) override;
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, double scale, int64_t window) override;
  void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                          const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, double scale, int64_t window,
                          const AttentionGradOptions& opt) override;
  void nsa_cmp_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& kc,
                         const Tensor& vc, const NsaBlocks& blocks, double scale) override;
  void nsa_cmp_attention_backward(const Tensor& dq, const Tensor& dkc, const Tensor& dvc, const Tensor& dout,
                                  const Tensor& q, const Tensor& kc, const Tensor& vc, const Tensor& out,
                                  const Tensor& lse, const NsaBlocks& blocks, double scale,
                                  const AttentionGradOptions& opt) override;
  void nsa_select(const Tensor& indices, const Tensor& q, const Tensor& kc, const Tensor& lse,
                  const NsaBlocks& blocks, double scale) override;
  void nsa_slc_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, const Tensor& indices, const NsaBlocks& blocks,
                         double scale) override;
  void nsa_slc_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                                  const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& indices,
                                  const Tensor& out, const Tensor& lse, const NsaBlocks& blocks, double scale,
                                  const AttentionGradOptions& opt) override;
  void nsa_gate_forward(const Tensor& out, const Tensor& logits, const Tensor& o_cmp, const Tensor& o_slc,
                        const Tensor& o_win) override;
  void nsa_gate_backward(const Tensor& d_logits, const Tensor& d_cmp, const Tensor& d_slc,
                         const Tensor& d_win, const Tensor& dout, const Tensor& logits, const Tensor& o_cmp,
                         const Tensor& o_slc, const Tensor& o_win, const Tensor* deltas) override;
};

}  // namespace nsa::cpu
