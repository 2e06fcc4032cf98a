#!/usr/bin/python3
"""The peer for bench_train_step: the same SFT step (Llama-style d=64 L=2, batch 64, 14 prompt + 34 completion
tokens, AdamW, grad clip 1.0, loss on completion tokens) in Debian's python3-torch, which runs the same ATen and
OpenBLAS as our libtorch. Prints steps/s. Usage: bench/peer_pytorch_sft.py [threads]"""
import math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)
V, D, L, H, FF, B, P, C = 100, 64, 2, 4, 176, 64, 14, 34
HD = D // H


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def rope(x, cos, sin):
    x1, x2 = x[..., : HD // 2], x[..., HD // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(D), RMSNorm(D)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D, bias=False) for _ in range(4))
        self.g, self.u, self.d = nn.Linear(D, FF, bias=False), nn.Linear(D, FF, bias=False), nn.Linear(FF, D, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.n1(x)
        q, k, v = (m(h).view(b, t, H, HD).transpose(1, 2) for m in (self.q, self.k, self.v))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HD) + mask, -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, D))
        h = self.n2(x)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.norm = RMSNorm(D)

    def forward(self, ids):
        t = ids.shape[1]
        inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
        ang = torch.arange(t).float()[:, None] * inv[None]
        emb = torch.cat([ang, ang], -1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((t, t), -1e30).triu(1)
        x = self.emb(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        return self.norm(x) @ self.emb.weight.t()


m = Model()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
ids = torch.randint(4, 94, (B, P + C))
target_mask = torch.zeros(B, P + C - 1)
target_mask[:, P - 1:] = 1


def step():
    logits = m(ids)[:, :-1]
    lp = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None]).squeeze(-1)
    loss = -(lp * target_mask).sum() / target_mask.sum()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


for _ in range(3):
    step()
n, t0 = 0, time.time()
while time.time() - t0 < 3.0:
    step()
    n += 1
print(f"python3-torch {torch.__version__} d=64 L=2 batch 64 seq 48: {n / (time.time() - t0):.2f} steps/s ({threads} thread(s))")
