// Native Sparse Attention benchmark: the whole op (nsa_attention: compression φ, compressed attention,
// selection, selected attention, sliding window, gates) and each branch alone (the gate both fused and as
// the generic ops it replaced, with its bandwidth next to a device copy's), forward and forward + backward,
// at the paper's NSA geometry (l = 32, d = 16, l' = 64, n = 16 with 1 initial and 2 local blocks, w = 512)
// and the benchmark model's attention shape: B = 1, Hq = 64, Hkv = 4, D = 128, bf16, T = 8k .. 64k.
//
// FLOPs are the work each branch actually has to do: the compressed and window branches over the keys each
// query sees, the selected branch over the tokens (<= t) of the blocks the selection really chose (counted
// from the indices), the selection's score products (q·kc for every visible compressed key), φ's two linear
// layers. Backward FLOPs are 2.5× the forward's (five products instead of two; the deterministic dQ
// kernels' two recomputed products are not counted). "bwd" is fwd+bwd minus fwd. Medians of several runs
// (CUDA events) after a warm-up, on random inputs. SDPA: PyTorch SDPA (flash backend), causal, same q/k/v
// shapes on this H100 (numbers given with the task, not re-measured here).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/cuda_api.h"
#include "kernels/attention/flash_attention.h"
#include "kernels/nsa/nsa.h"
#include "ops/ops.h"
#include "tests/bench/bench_timer.h"

using namespace nsa;

namespace {

// Median milliseconds of `fn` over `reps` timed runs, after one warm-up run.
double time_ms(const std::function<void()>& fn, int reps) { return bench::median_ms(fn, reps); }

struct Reference {
  int64_t seq;
  double fwd_ms, fwd_bwd_ms;
};
// PyTorch SDPA flash, causal, H100, B = 1, Hq = 64, Hkv = 4, D = 128 (given with the task).
const Reference kSdpa[] = {{8192, 3.2, 13.1}, {65536, 206.0, 754.0}};

Tensor leaf(const Tensor& t) { return detach(t).set_requires_grad(true); }
Tensor scaled_randn(const Dims& shape, double stddev, Generator& gen) {
  return to(mul_scalar(randn(shape, DType::f32, Device::cuda(), &gen), stddev), DType::bf16);
}

struct Row {
  const char* branch;
  double flops_fwd;     // 0: no FLOPs reported
  double fwd, fwd_bwd;  // ms; fwd_bwd < 0: no backward
};

void print_row(int64_t seq, const Row& r) {
  char bwd[64] = "-", fb[64] = "-", fb_rate[64] = "-";
  if (r.fwd_bwd >= 0) {
    std::snprintf(fb, sizeof(fb), "%.2f", r.fwd_bwd);
    std::snprintf(bwd, sizeof(bwd), "%.2f", r.fwd_bwd - r.fwd);
    if (r.flops_fwd > 0) std::snprintf(fb_rate, sizeof(fb_rate), "%.0f", 3.5 * r.flops_fwd / r.fwd_bwd / 1e9);
  }
  char rate[64] = "-";
  if (r.flops_fwd > 0) std::snprintf(rate, sizeof(rate), "%.0f", r.flops_fwd / r.fwd / 1e9);
  std::printf("| %lldk | %s | %.2f | %s | %s | %s | %s |\n", static_cast<long long>(seq / 1024), r.branch,
              r.fwd, rate, fb, bwd, fb_rate);
  std::fflush(stdout);
}

}  // namespace

// Usage: nsa_bench_nsa [T ...] (default 8192 16384 32768 65536)
//        nsa_bench_nsa --profile T: one forward + backward of nsa_attention only (for a profiler).
int main(int argc, char** argv) {
  if (!cuda::available()) {
    std::fprintf(stderr, "nsa_bench_nsa: no CUDA device\n");
    return 1;
  }
  const Device gpu = Device::cuda();
  std::printf("device: %s\n", cuda::device_name(0).c_str());
  const int64_t heads_q = 64, heads_kv = 4, dim = 128, hidden = 128;
  NsaConfig cfg;  // the paper's geometry: l = 32, d = 16, l' = 64, n = 16 (1 initial, 2 local), w = 512
  cfg.cmp_block = 32;
  cfg.cmp_stride = 16;
  cfg.slc_block = 64;
  cfg.slc_top_n = 16;
  cfg.slc_init_blocks = 1;
  cfg.slc_local_blocks = 2;
  cfg.window = 512;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));

  std::vector<int64_t> seqs;
  const bool profile = argc > 1 && std::string(argv[1]) == "--profile";
  for (int i = profile ? 2 : 1; i < argc; ++i) seqs.push_back(std::atoll(argv[i]));
  if (seqs.empty()) seqs = {8192, 16384, 32768, 65536};

  std::printf("\n| T | branch | fwd ms | fwd TFLOP/s | fwd+bwd ms | bwd ms | fwd+bwd TFLOP/s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<std::string> summary;
  for (const int64_t seq : seqs) {
    Generator gen(11);
    const int reps = seq >= 32768 ? 3 : 8;
    const int64_t nc = nsa_num_cmp_blocks(seq, cfg);
    auto act = [&](int64_t heads) { return randn({1, seq, heads, dim}, DType::bf16, gpu, &gen); };
    const Tensor q = act(heads_q), dout = act(heads_q);
    const Tensor k_cmp = act(heads_kv), v_cmp = act(heads_kv), k_slc = act(heads_kv), v_slc = act(heads_kv);
    const Tensor k_win = act(heads_kv), v_win = act(heads_kv);
    const Tensor gates = randn({1, seq, heads_q, 3}, DType::bf16, gpu, &gen);
    const double w1_std = 1.0 / std::sqrt(static_cast<double>(cfg.cmp_block * dim));
    const Tensor pos_k = scaled_randn({cfg.cmp_block, dim}, 0.02, gen),
                 pos_v = scaled_randn({cfg.cmp_block, dim}, 0.02, gen);
    const Tensor w1_k = scaled_randn({hidden, cfg.cmp_block * dim}, w1_std, gen);
    const Tensor w1_v = scaled_randn({hidden, cfg.cmp_block * dim}, w1_std, gen);
    const Tensor w2_k = scaled_randn({dim, hidden}, 1.0 / std::sqrt(static_cast<double>(hidden)), gen);
    const Tensor w2_v = scaled_randn({dim, hidden}, 1.0 / std::sqrt(static_cast<double>(hidden)), gen);

    // The branch inputs the later branches need, computed once.
    Tensor kc, vc, lse, indices;
    {
      NoGradGuard no_grad;
      kc = nsa_compress(k_cmp, pos_k, w1_k, w2_k, cfg);
      vc = nsa_compress(v_cmp, pos_v, w1_v, w2_v, cfg);
      lse = nsa_compressed_attention(q, kc, vc, cfg).lse;
      indices = nsa_select_blocks(q, kc, lse, cfg);
    }
    const Tensor dkc = randn(kc.shape(), DType::bf16, gpu, &gen);
    if (profile) {
      std::vector<Tensor> leaves;
      for (const Tensor* t : {&q, &k_cmp, &v_cmp, &k_slc, &v_slc, &k_win, &v_win, &gates, &pos_k, &w1_k,
                              &w2_k, &pos_v, &w1_v, &w2_v})
        leaves.push_back(leaf(*t));
      NsaBranchInputs in{leaves[0],  leaves[1],  leaves[2],  leaves[3],  leaves[4],
                         leaves[5],  leaves[6],  leaves[7],  leaves[8],  leaves[9],
                         leaves[10], leaves[11], leaves[12], leaves[13], {}};
      backward(nsa_attention(in, cfg), dout);
      CHECK_CUDA(cudaDeviceSynchronize());
      std::printf("profile pass at T = %lld done\n", static_cast<long long>(seq));
      continue;
    }

    // FLOPs of each branch's forward.
    double cmp_keys = 0, win_keys = 0, slc_keys = 0;
    for (int64_t t = 0; t < seq; ++t) {
      cmp_keys += t < cfg.cmp_block - 1
                      ? 0.0
                      : static_cast<double>(std::min(nc, (t - cfg.cmp_block + 1) / cfg.cmp_stride + 1));
      win_keys += static_cast<double>(std::min<int64_t>(t + 1, cfg.window));
    }
    {
      const std::vector<int32_t> idx = to_vector<int32_t>(indices);
      for (int64_t t = 0; t < seq; ++t)
        for (int64_t g = 0; g < heads_kv; ++g)
          for (int64_t s = 0; s < cfg.slc_top_n; ++s) {
            const int64_t j = idx[(t * heads_kv + g) * cfg.slc_top_n + s];
            if (j >= 0 && j * cfg.slc_block <= t)
              slc_keys += static_cast<double>(std::min((j + 1) * cfg.slc_block, t + 1) - j * cfg.slc_block);
          }
      slc_keys *= static_cast<double>(heads_q / heads_kv);  // per query head
    }
    const double attn = 2.0 * static_cast<double>(2 * dim);  // q·k and p·v per (row, key)
    const double f_cmp = cmp_keys * heads_q * attn, f_win = win_keys * heads_q * attn;
    const double f_slc = slc_keys * attn, f_sel = cmp_keys * heads_q * 2.0 * dim;
    const double f_phi = 2.0 * 2.0 * static_cast<double>(nc * heads_kv) *
                         static_cast<double>(cfg.cmp_block * dim * hidden + hidden * dim);

    std::vector<Row> rows;
    auto fwd_only = [&](const std::function<void()>& fn) {
      return time_ms(
          [&] {
            NoGradGuard no_grad;
            fn();
          },
          reps);
    };
    // Compression φ (keys and values).
    {
      const double f = fwd_only([&] {
        Tensor a = nsa_compress(k_cmp, pos_k, w1_k, w2_k, cfg),
               b = nsa_compress(v_cmp, pos_v, w1_v, w2_v, cfg);
      });
      Tensor xk = leaf(k_cmp), xv = leaf(v_cmp), pk = leaf(pos_k), pv = leaf(pos_v);
      Tensor ak = leaf(w1_k), av = leaf(w1_v), bk = leaf(w2_k), bv = leaf(w2_v);
      const double fb = time_ms(
          [&] {
            for (Tensor* t : {&xk, &xv, &pk, &pv, &ak, &av, &bk, &bv}) t->set_grad(Tensor());
            backward(nsa_compress(xk, pk, ak, bk, cfg), dkc);
            backward(nsa_compress(xv, pv, av, bv, cfg), dkc);
          },
          reps);
      rows.push_back({"compression φ (k, v)", f_phi, f, fb});
    }
    {
      const double f = fwd_only([&] { NsaCmpResult r = nsa_compressed_attention(q, kc, vc, cfg); });
      Tensor lq = leaf(q), lk = leaf(kc), lv = leaf(vc);
      const double fb = time_ms(
          [&] {
            for (Tensor* t : {&lq, &lk, &lv}) t->set_grad(Tensor());
            backward(nsa_compressed_attention(lq, lk, lv, cfg).out, dout);
          },
          reps);
      rows.push_back({"compressed attention", f_cmp, f, fb});
      // The forward's other ways of sharing K/V stages among its warpgroups (not part of the NSA total).
      kernels::set_group_forward_sync(kernels::GroupForwardSync::ring3);
      const double f_ring3 = fwd_only([&] { NsaCmpResult r = nsa_compressed_attention(q, kc, vc, cfg); });
      kernels::set_group_forward_sync(kernels::GroupForwardSync::lockstep);
      const double f_lock = fwd_only([&] { NsaCmpResult r = nsa_compressed_attention(q, kc, vc, cfg); });
      kernels::set_group_forward_sync(kernels::GroupForwardSync::automatic);
      rows.push_back({"  (compressed, forward with a 3-stage ring)", f_cmp, f_ring3, -1});
      rows.push_back({"  (compressed, forward in lockstep)", f_cmp, f_lock, -1});
    }
    rows.push_back(
        {"selection (top-n)", f_sel, fwd_only([&] { Tensor i = nsa_select_blocks(q, kc, lse, cfg); }), -1});
    {
      const double f = fwd_only([&] { Tensor o = nsa_selected_attention(q, k_slc, v_slc, indices, cfg); });
      Tensor lq = leaf(q), lk = leaf(k_slc), lv = leaf(v_slc);
      const double fb = time_ms(
          [&] {
            for (Tensor* t : {&lq, &lk, &lv}) t->set_grad(Tensor());
            backward(nsa_selected_attention(lq, lk, lv, indices, cfg), dout);
          },
          reps);
      rows.push_back({"selected attention (dQ from the dK/dV kernel on sm_90a)", f_slc, f, fb});
      // The same branch with the query-side dQ kernel, for comparison (not part of the NSA total).
      kernels::set_slc_dq_kernel(kernels::SlcDqKernel::query_side);
      const double fb_query = time_ms(
          [&] {
            for (Tensor* t : {&lq, &lk, &lv}) t->set_grad(Tensor());
            backward(nsa_selected_attention(lq, lk, lv, indices, cfg), dout);
          },
          reps);
      kernels::set_slc_dq_kernel(kernels::SlcDqKernel::automatic);
      rows.push_back({"  (selected, query-side dQ kernel)", f_slc, f, fb_query});
    }
    {
      const double f = fwd_only([&] { Tensor o = attention(q, k_win, v_win, scale, cfg.window); });
      Tensor lq = leaf(q), lk = leaf(k_win), lv = leaf(v_win);
      const double fb = time_ms(
          [&] {
            for (Tensor* t : {&lq, &lk, &lv}) t->set_grad(Tensor());
            backward(attention(lq, lk, lv, scale, cfg.window), dout);
          },
          reps);
      rows.push_back({"sliding window (group-row wgmma on sm_90a)", f_win, f, fb});
      kernels::set_group_forward_sync(kernels::GroupForwardSync::lockstep);
      const double f_lock = fwd_only([&] { Tensor o = attention(q, k_win, v_win, scale, cfg.window); });
      kernels::set_group_forward_sync(kernels::GroupForwardSync::automatic);
      rows.push_back({"  (window, forward in lockstep)", f_win, f_lock, -1});
      // The same branch on the mma.sync flash kernels, for comparison (not part of the NSA total).
      kernels::set_flash_kernel(kernels::FlashKernel::mma_sync);
      const double f_old = fwd_only([&] { Tensor o = attention(q, k_win, v_win, scale, cfg.window); });
      const double fb_old = time_ms(
          [&] {
            for (Tensor* t : {&lq, &lk, &lv}) t->set_grad(Tensor());
            backward(attention(lq, lk, lv, scale, cfg.window), dout);
          },
          reps);
      kernels::set_flash_kernel(kernels::FlashKernel::automatic);
      rows.push_back({"  (window on the mma.sync flash kernels)", f_win, f_old, fb_old});
    }
    // The gate alone (eq. 5): the fused op against the generic ops it replaced, and the bandwidth it reaches
    // next to a device-to-device copy (the forward moves 4 rows per (t, h), the backward 7).
    {
      const Tensor oc = act(heads_q), os = act(heads_q), ow = act(heads_q);
      auto composed = [](const Tensor& g, const Tensor& c, const Tensor& s, const Tensor& w) {
        const Tensor sg = sigmoid(g);
        return add(add(mul(narrow(sg, 3, 0, 1), c), mul(narrow(sg, 3, 1, 1), s)),
                   mul(narrow(sg, 3, 2, 1), w));
      };
      std::vector<Tensor> lv = {leaf(gates), leaf(oc), leaf(os), leaf(ow)};
      auto timed = [&](auto&& gate_fn) {
        const double f = fwd_only([&] { Tensor o = gate_fn(gates, oc, os, ow); });
        const double fb = time_ms(
            [&] {
              for (Tensor& t : lv) t.set_grad(Tensor());
              backward(gate_fn(lv[0], lv[1], lv[2], lv[3]), dout);
            },
            reps);
        return std::pair<double, double>{f, fb};
      };
      const auto [f, fb] = timed([](const Tensor& g, const Tensor& c, const Tensor& s, const Tensor& w) {
        return nsa_gate_combine(g, c, s, w);
      });
      const auto [cf, cfb] = timed(composed);
      rows.push_back({"gate (fused nsa_gate_combine)", 0, f, fb});
      rows.push_back({"gate (composed generic ops)", 0, cf, cfb});
      const double row_bytes = static_cast<double>(oc.numel()) * 2.0;  // one [T, Hq, D] bf16 tensor
      const double copy = time_ms(
          [&] {
            CHECK_CUDA(cudaMemcpyAsync(os.data_ptr(), oc.data_ptr(), static_cast<size_t>(row_bytes),
                                       cudaMemcpyDeviceToDevice,
                                       static_cast<cudaStream_t>(cuda::current_stream())));
          },
          reps);
      char line[256];
      std::snprintf(
          line, sizeof(line),
          "T = %lldk: gate fused %.2f ms fwd (%.0f GB/s), %.2f ms bwd (%.0f GB/s); composed %.2f / %.2f ms;"
          " D2D copy %.0f GB/s",
          static_cast<long long>(seq / 1024), f, 4 * row_bytes / f / 1e6, fb - f,
          7 * row_bytes / (fb - f) / 1e6, cf, cfb - cf, 2 * row_bytes / copy / 1e6);
      summary.push_back(line);
    }
    // The whole op, every input a leaf.
    {
      NsaBranchInputs plain{q,     k_cmp, v_cmp, k_slc, v_slc, k_win, v_win, gates,
                            pos_k, w1_k,  w2_k,  pos_v, w1_v,  w2_v,  {}};
      const double f = fwd_only([&] { Tensor o = nsa_attention(plain, cfg); });
      std::vector<Tensor> leaves;
      for (const Tensor* t : {&q, &k_cmp, &v_cmp, &k_slc, &v_slc, &k_win, &v_win, &gates, &pos_k, &w1_k,
                              &w2_k, &pos_v, &w1_v, &w2_v})
        leaves.push_back(leaf(*t));
      NsaBranchInputs in{leaves[0],  leaves[1],  leaves[2],  leaves[3],  leaves[4],
                         leaves[5],  leaves[6],  leaves[7],  leaves[8],  leaves[9],
                         leaves[10], leaves[11], leaves[12], leaves[13], {}};
      const double fb = time_ms(
          [&] {
            for (Tensor& t : leaves) t.set_grad(Tensor());
            backward(nsa_attention(in, cfg), dout);
          },
          reps);
      const double grad_sum =
          item(sum(to(leaves[0].grad(), DType::f32))) + item(sum(to(leaves[3].grad(), DType::f32)));
      if (!std::isfinite(grad_sum)) {
        std::fprintf(stderr, "non-finite gradients at T = %lld\n", static_cast<long long>(seq));
        return 1;
      }
      rows.push_back({"nsa_attention (all)", f_phi + f_cmp + f_sel + f_slc + f_win, f, fb});
      char line[256];
      std::string ref = "no SDPA reference at this length";
      for (const Reference& r : kSdpa)
        if (r.seq == seq) {
          std::snprintf(line, sizeof(line),
                        "vs SDPA flash causal %.1f / %.1f ms: %.1fx forward, %.1fx fwd+bwd", r.fwd_ms,
                        r.fwd_bwd_ms, r.fwd_ms / f, r.fwd_bwd_ms / fb);
          ref = line;
        }
      std::snprintf(line, sizeof(line), "T = %lldk: nsa_attention %.2f ms fwd, %.2f ms fwd+bwd; %s",
                    static_cast<long long>(seq / 1024), f, fb, ref.c_str());
      summary.push_back(line);
    }
    for (const Row& r : rows) print_row(seq, r);
  }
  std::printf("\n");
  for (const std::string& s : summary) std::printf("%s\n", s.c_str());
  const MemoryStats s = memory_stats(gpu);
  std::printf("allocator: peak %.2f GiB reserved\n", static_cast<double>(s.peak_reserved_bytes) / (1 << 30));
  return 0;
}
