"""PyTorch reference for training throughput: the same Llama-style GQA transformer as an nsa-train config
(RMSNorm, RoPE, SDPA causal attention, SwiGLU, tied embeddings), bf16 autocast with f32 master weights and
fused AdamW, timed eager and with torch.compile. Used only as a baseline on the GPU machine, never by the
product.

  python3 tests/bench/torch_lm_reference.py --d-model 768 --layers 12 --heads 12 --kv-heads 4 \
      --ffn 2304 --vocab 50304 --seq 1024 --micro 16 --accum 2 --steps 30
Prints one line per mode: tokens/s and peak memory.
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.h, self.kv, self.hd = a.heads, a.kv_heads, a.d_model // a.heads
        self.attn_norm = nn.RMSNorm(a.d_model, eps=1e-5)
        self.mlp_norm = nn.RMSNorm(a.d_model, eps=1e-5)
        self.wq = nn.Linear(a.d_model, self.h * self.hd, bias=False)
        self.wk = nn.Linear(a.d_model, self.kv * self.hd, bias=False)
        self.wv = nn.Linear(a.d_model, self.kv * self.hd, bias=False)
        self.wo = nn.Linear(self.h * self.hd, a.d_model, bias=False)
        self.w_gate = nn.Linear(a.d_model, a.ffn, bias=False)
        self.w_up = nn.Linear(a.d_model, a.ffn, bias=False)
        self.w_down = nn.Linear(a.ffn, a.d_model, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.h, self.hd)
        k = self.wk(h).view(B, T, self.kv, self.hd)
        v = self.wv(h).view(B, T, self.kv, self.hd)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True, enable_gqa=True)
        x = x + self.wo(o.transpose(1, 2).reshape(B, T, -1))
        h = self.mlp_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class LM(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = nn.Embedding(a.vocab, a.d_model)
        self.blocks = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = nn.RMSNorm(a.d_model, eps=1e-5)
        hd = a.d_model // a.heads
        inv = 10000.0 ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
        ang = torch.arange(a.seq, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float()[None, :, None, :], persistent=False)
        self.register_buffer("sin", ang.sin().float()[None, :, None, :], persistent=False)

    def forward(self, ids, targets):
        x = self.embed(ids)
        cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
        for b in self.blocks:
            x = b(x, cos.to(torch.bfloat16), sin.to(torch.bfloat16))
        logits = F.linear(self.norm(x), self.embed.weight)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def run(a, compiled):
    torch.manual_seed(0)
    model = LM(a).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    step_fn = torch.compile(model) if compiled else model
    ids = torch.randint(0, 512, (a.micro, a.seq), device="cuda")
    tgt = torch.randint(0, 512, (a.micro, a.seq), device="cuda")

    def step():
        for _ in range(a.accum):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = step_fn(ids, tgt) / a.accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tok = a.steps * a.accum * a.micro * a.seq / dt
    mem = torch.cuda.max_memory_allocated() / 2**30
    print(f"torch {'compile' if compiled else 'eager'}: {tok / 1e3:.1f}k tokens/s, peak {mem:.2f} GiB "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params)", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    for k, v in dict(d_model=768, layers=12, heads=12, kv_heads=4, ffn=2304, vocab=50304, seq=1024, micro=16,
                     accum=2, steps=30).items():
        p.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    p.add_argument("--modes", default="eager,compile")
    a = p.parse_args()
    for m in a.modes.split(","):
        run(a, m == "compile")
