// Packed variable-length batches (ops/varlen.h): dense attention against a block-diagonal causal reference
// written as loops, no influence across documents, NSA packed vs the same documents as a fixed-length batch,
// f64 gradient checks, and CUDA vs CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "ops/ops.h"
#include "test_util.h"

namespace nsa {
namespace {

using test::gradcheck;
using test::rel_error;

Tensor rnd(const Dims& shape, Generator& g, DType dt = DType::f64) { return randn(shape, dt, Device::cpu(), &g); }

// Causal attention restricted to each document (and to the window), as plain loops in double.
std::vector<double> reference(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int64_t>& cu,
                              int64_t window) {
  const int64_t T = q.size(1), Hq = q.size(2), Hkv = k.size(2), D = q.size(3), Dv = v.size(3);
  const std::vector<double> qv = to_vector<double>(q), kv = to_vector<double>(k), vv = to_vector<double>(v);
  std::vector<double> out(static_cast<size_t>(T * Hq * Dv), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (size_t d = 0; d + 1 < cu.size(); ++d) {
    for (int64_t t = cu[d]; t < cu[d + 1]; ++t) {
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t g = h / (Hq / Hkv);
        const int64_t first = window > 0 ? std::max(cu[d], t - window + 1) : cu[d];
        std::vector<double> s;
        double mx = -INFINITY;
        for (int64_t j = first; j <= t; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < D; ++i) dot += qv[(t * Hq + h) * D + i] * kv[(j * Hkv + g) * D + i];
          s.push_back(dot * scale);
          mx = std::max(mx, s.back());
        }
        double z = 0;
        for (double& x : s) z += (x = std::exp(x - mx));
        for (int64_t j = first; j <= t; ++j) {
          for (int64_t i = 0; i < Dv; ++i) out[(t * Hq + h) * Dv + i] += s[j - first] / z * vv[(j * Hkv + g) * Dv + i];
        }
      }
    }
  }
  return out;
}

TEST(Varlen, AttentionMatchesBlockDiagonalReference) {
  Generator g(1);
  const std::vector<int64_t> cu{0, 5, 38, 39, 59};
  for (int64_t window : {0, 3}) {
    const Tensor q = rnd({1, 59, 4, 8}, g), k = rnd({1, 59, 2, 8}, g), v = rnd({1, 59, 2, 6}, g);
    const Tensor out = attention_varlen(q, k, v, cu, 0.0, window);
    const double err = rel_error(out, from_vector<double>(reference(q, k, v, cu, window), out.shape()));
    std::printf("[varlen] attention window=%lld rel_err=%.2e\n", static_cast<long long>(window), err);
    EXPECT_LT(err, 1e-13);
  }
}

TEST(Varlen, NoInfluenceAcrossDocuments) {
  Generator g(2);
  const std::vector<int64_t> cu{0, 17, 40};
  const Tensor q = rnd({1, 40, 2, 4}, g), k = rnd({1, 40, 1, 4}, g), v = rnd({1, 40, 1, 4}, g);
  const Tensor before = attention_varlen(q, k, v, cu);
  // Change every key and value of the second document: the first document's outputs must not move.
  const Tensor k2 = cat({narrow(k, 1, 0, 17), rnd({1, 23, 1, 4}, g)}, 1);
  const Tensor v2 = cat({narrow(v, 1, 0, 17), rnd({1, 23, 1, 4}, g)}, 1);
  const Tensor after = attention_varlen(q, k2, v2, cu);
  EXPECT_TRUE(test::equal_values(narrow(after, 1, 0, 17), narrow(before, 1, 0, 17)));
  EXPECT_FALSE(test::equal_values(narrow(after, 1, 17, 23), narrow(before, 1, 17, 23)));
}

TEST(Varlen, RejectsBadBoundaries) {
  Generator g(3);
  const Tensor q = rnd({1, 10, 2, 4}, g), k = rnd({1, 10, 1, 4}, g);
  for (const std::vector<int64_t>& cu : {std::vector<int64_t>{0, 9}, {1, 10}, {0, 5, 5, 10}, {0}}) {
    EXPECT_THROW(attention_varlen(q, k, k, cu), Error);
  }
  EXPECT_THROW(attention_varlen(rnd({2, 10, 2, 4}, g), rnd({2, 10, 1, 4}, g), rnd({2, 10, 1, 4}, g), {0, 10}), Error);
}

TEST(Varlen, AttentionGradCheck) {
  Generator g(4);
  const std::vector<int64_t> cu{0, 3, 9, 10};
  std::string report;
  const double err = gradcheck(
      [&](const std::vector<Tensor>& t) { return std::vector<Tensor>{attention_varlen(t[0], t[1], t[2], cu, 0.0, 4)}; },
      {rnd({1, 10, 4, 3}, g).set_requires_grad(true), rnd({1, 10, 2, 3}, g).set_requires_grad(true),
       rnd({1, 10, 2, 3}, g).set_requires_grad(true)},
      &report);
  std::printf("[gradcheck] attention_varlen%s\n", report.c_str());
  EXPECT_LT(err, 1e-6) << report;
}

NsaConfig small_nsa() {
  return NsaConfig{.cmp_block = 8, .cmp_stride = 4, .slc_block = 16, .slc_top_n = 3, .slc_init_blocks = 1,
                   .slc_local_blocks = 1, .window = 16};
}

// Random NSA inputs for `batch` sequences of `seq` tokens; φ weights shared.
NsaBranchInputs nsa_inputs(int64_t batch, int64_t seq, Generator& g, DType dt = DType::f64) {
  const NsaConfig c = small_nsa();
  const int64_t Hq = 4, Hkv = 2, D = 8, hidden = 8, l = c.cmp_block;
  NsaBranchInputs in;
  in.q = rnd({batch, seq, Hq, D}, g, dt);
  for (Tensor* t : {&in.k_cmp, &in.v_cmp, &in.k_slc, &in.v_slc, &in.k_win, &in.v_win}) *t = rnd({batch, seq, Hkv, D}, g, dt);
  in.gate_logits = rnd({batch, seq, Hq, 3}, g, dt);
  in.cmp_pos_k = rnd({l, D}, g, dt) * 0.1;
  in.cmp_pos_v = rnd({l, D}, g, dt) * 0.1;
  in.cmp_w1_k = rnd({hidden, l * D}, g, dt) * (1.0 / std::sqrt(l * D));
  in.cmp_w1_v = rnd({hidden, l * D}, g, dt) * (1.0 / std::sqrt(l * D));
  in.cmp_w2_k = rnd({D, hidden}, g, dt) * (1.0 / std::sqrt(hidden));
  in.cmp_w2_v = rnd({D, hidden}, g, dt) * (1.0 / std::sqrt(hidden));
  return in;
}

NsaBranchInputs packed(const NsaBranchInputs& in) {
  NsaBranchInputs p = in;
  for (Tensor* t : {&p.q, &p.k_cmp, &p.v_cmp, &p.k_slc, &p.v_slc, &p.k_win, &p.v_win, &p.gate_logits}) {
    Dims s = t->shape();
    *t = reshape(*t, {1, s[0] * s[1], s[2], s[3]});
  }
  return p;
}

TEST(Varlen, NsaPackedEqualsTheFixedLengthBatch) {
  Generator g(5);
  const int64_t T = 45;  // not a multiple of any block size
  const NsaBranchInputs in = nsa_inputs(2, T, g);
  const Tensor batched = nsa_attention(in, small_nsa());
  const Tensor varlen = nsa_attention_varlen(packed(in), {0, T, 2 * T}, small_nsa());
  const double err = rel_error(varlen, reshape(batched, varlen.shape()));
  std::printf("[varlen] nsa packed vs batch rel_err=%.2e\n", err);
  EXPECT_LT(err, 1e-15);
}

TEST(Varlen, NsaRaggedDocumentsAreIndependent) {
  Generator g(6);
  const std::vector<int64_t> cu{0, 1, 34, 60, 77};
  const NsaBranchInputs in = nsa_inputs(1, 77, g);
  const Tensor out = nsa_attention_varlen(in, cu, small_nsa());
  for (size_t d = 0; d + 1 < cu.size(); ++d) {
    NsaBranchInputs doc = in;
    for (Tensor* t : {&doc.q, &doc.k_cmp, &doc.v_cmp, &doc.k_slc, &doc.v_slc, &doc.k_win, &doc.v_win, &doc.gate_logits}) {
      *t = contiguous(narrow(*t, 1, cu[d], cu[d + 1] - cu[d]));
    }
    EXPECT_TRUE(test::equal_values(narrow(out, 1, cu[d], cu[d + 1] - cu[d]), nsa_attention(doc, small_nsa())))
        << "document " << d;
  }
}

TEST(Varlen, CudaMatchesCpu) {
  NSA_REQUIRE_GPU();
  Generator g(7);
  const std::vector<int64_t> cu{0, 100, 133, 300};
  for (DType dt : {DType::f32, DType::bf16}) {
    // The CPU reference (f32) reads the values the GPU reads: rounded to dt first, so the comparison measures
    // the kernels' arithmetic, not the rounding of the inputs.
    NsaBranchInputs cpu = nsa_inputs(1, 300, g, DType::f32);
    for (Tensor* t : {&cpu.q, &cpu.k_cmp, &cpu.v_cmp, &cpu.k_slc, &cpu.v_slc, &cpu.k_win, &cpu.v_win,
                      &cpu.gate_logits, &cpu.cmp_pos_k, &cpu.cmp_pos_v, &cpu.cmp_w1_k, &cpu.cmp_w1_v, &cpu.cmp_w2_k,
                      &cpu.cmp_w2_v}) {
      *t = to(to(*t, Device::cpu(), dt), Device::cpu(), DType::f32);
    }
    NsaBranchInputs gpu = cpu;
    for (Tensor* t : {&gpu.q, &gpu.k_cmp, &gpu.v_cmp, &gpu.k_slc, &gpu.v_slc, &gpu.k_win, &gpu.v_win,
                      &gpu.gate_logits, &gpu.cmp_pos_k, &gpu.cmp_pos_v, &gpu.cmp_w1_k, &gpu.cmp_w1_v, &gpu.cmp_w2_k,
                      &gpu.cmp_w2_v}) {
      *t = to(*t, Device::cuda(0), dt);
    }
    const Tensor ref = attention_varlen(cpu.q, cpu.k_win, cpu.v_win, cu, 0.0, 32);
    const Tensor got = attention_varlen(gpu.q, gpu.k_win, gpu.v_win, cu, 0.0, 32);
    const double e_attn = rel_error(got, ref);
    const double e_nsa = rel_error(nsa_attention_varlen(gpu, cu, small_nsa()), nsa_attention_varlen(cpu, cu, small_nsa()));
    std::printf("[varlen] cuda %s: attention rel_err=%.2e nsa rel_err=%.2e\n", dtype_name(dt), e_attn, e_nsa);
    const double tol = dt == DType::f32 ? 1e-5 : 2e-2;
    EXPECT_LT(e_attn, tol);
    EXPECT_LT(e_nsa, tol);
  }
}

}  // namespace
}  // namespace nsa
