"""PyTorch scaled_dot_product_attention (flash backend, causal) timed at the attention shapes of the NSA
benchmark: the dense baseline that tests/bench/bench_nsa.cpp and bench_attention.cpp are compared with in
the same device run. Reference only; never part of the product.

  python3 tests/bench/sdpa_reference.py [--seqs 8192,16384,32768,65536] [--heads 64] [--kv-heads 4] [--dim 128]
Prints one line per length: forward ms, forward+backward ms, TFLOP/s (causal FLOPs).
"""
import argparse

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def timed(fn, iters):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = float("inf")
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end))
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", default="8192,16384,32768,65536")
    p.add_argument("--heads", type=int, default=64)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--backend", default="flash", choices=["flash", "cudnn"])
    a = p.parse_args()
    backend = SDPBackend.FLASH_ATTENTION if a.backend == "flash" else SDPBackend.CUDNN_ATTENTION
    for T in [int(s) for s in a.seqs.split(",")]:
        g = torch.Generator(device="cuda").manual_seed(0)
        q = torch.randn(1, a.heads, T, a.dim, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
        # The flash kernel takes equal head counts: the KV heads are expanded (a view, as SDPA's enable_gqa does).
        k0 = torch.randn(1, a.kv_heads, T, a.dim, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
        v0 = torch.randn(1, a.kv_heads, T, a.dim, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
        rep = a.heads // a.kv_heads
        dout = torch.randn(1, a.heads, T, a.dim, device="cuda", dtype=torch.bfloat16, generator=g)
        iters = 10 if T <= 16384 else 3

        def fwd():
            with sdpa_kernel(backend), torch.no_grad():
                k = k0.repeat_interleave(rep, dim=1)
                v = v0.repeat_interleave(rep, dim=1)
                F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def fwd_bwd():
            with sdpa_kernel(backend):
                k = k0.repeat_interleave(rep, dim=1)
                v = v0.repeat_interleave(rep, dim=1)
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                o.backward(dout)

        f_ms = timed(fwd, iters)
        fb_ms = timed(fwd_bwd, iters)
        flops_fwd = 4.0 * T * (T + 1) / 2 * a.heads * a.dim
        print(f"sdpa-{a.backend} T={T}: fwd {f_ms:.2f} ms ({flops_fwd / f_ms / 1e9:.0f} TFLOP/s), "
              f"fwd+bwd {fb_ms:.2f} ms ({3.5 * flops_fwd / fb_ms / 1e9:.0f} TFLOP/s)", flush=True)
        del q, k0, v0, dout
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
