#!/usr/bin/python3
"""The independent python3-torch peer of our SFT trainer (Debian's python3-torch runs the same ATen and OpenBLAS
as our libtorch). Llama-style decoder (RMSNorm, RoPE, SwiGLU, tied embeddings), AdamW, grad clip 1.0, loss on
completion tokens. Prints steps/s.

Two modes:
  peer_pytorch_sft.py [threads]
      fixed shapes, the peer of bench_train_step: d=64 L=2, batch 64, 14 prompt + 34 completion random tokens.
  peer_pytorch_sft.py --batches B.jsonl --preset P.json [--role device] [--threads N]
      the rows `handoff sft` trains on (bench_sft_batches writes them), each batch right-padded to its longest
      row as a plain PyTorch trainer does; also prints real tokens/s and the share of computed tokens that was
      padding (bench/run_sft_peer.sh).
"""
import argparse, json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, ff = c["hidden_size"], c["intermediate_size"]
        self.h, self.kv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = d // self.h
        self.n1, self.n2 = RMSNorm(d, c["rms_norm_eps"]), RMSNorm(d, c["rms_norm_eps"])
        self.q, self.o = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.k, self.v = nn.Linear(d, self.kv * self.hd, bias=False), nn.Linear(d, self.kv * self.hd, bias=False)
        self.g, self.u, self.d = nn.Linear(d, ff, bias=False), nn.Linear(d, ff, bias=False), nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        if self.kv != self.h:
            k, v = k.repeat_interleave(self.h // self.kv, 1), v.repeat_interleave(self.h // self.kv, 1)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
        h = self.n2(x)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c["vocab_size"], c["hidden_size"])
        nn.init.normal_(self.emb.weight, 0.0, 0.02)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, ids):  # right-padded rows: the causal mask alone keeps real tokens off the padding
        t, hd = ids.shape[1], self.blocks[0].hd
        inv = 1.0 / (self.c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(t).float()[:, None] * inv[None]
        emb = torch.cat([ang, ang], -1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((t, t), -1e30).triu(1)
        x = self.emb(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        return self.norm(x) @ self.emb.weight.t()


def optimizer(m, lr, weight_decay):
    decay = [p for p in m.parameters() if p.dim() >= 2]
    rest = [p for p in m.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98))


def train_step(m, opt, ids, target_mask):
    logits = m(ids)[:, :-1]
    lp = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None]).squeeze(-1)
    loss = -(lp * target_mask).sum() / target_mask.sum()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    return loss.item()


def fixed_shapes(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 4, "rms_norm_eps": 1e-5}
    B, P, C = 64, 14, 34
    m = Model(c)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    ids = torch.randint(4, 94, (B, P + C))
    target_mask = torch.zeros(B, P + C - 1)
    target_mask[:, P - 1:] = 1
    for _ in range(3):
        train_step(m, opt, ids, target_mask)
    n, t0 = 0, time.time()
    while time.time() - t0 < 3.0:
        train_step(m, opt, ids, target_mask)
        n += 1
    print(f"python3-torch {torch.__version__} d=64 L=2 batch 64 seq 48: {n / (time.time() - t0):.2f} steps/s "
          f"({threads} thread(s))")


def padded(batch):
    rows = [p + c for p, c in zip(batch["prompts"], batch["completions"])]
    longest = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    target_mask = torch.zeros(len(rows), longest - 1)
    for i, (p, r) in enumerate(zip(batch["prompts"], rows)):
        ids[i, : len(r)] = torch.tensor(r)
        target_mask[i, len(p) - 1: len(r) - 1] = 1  # positions that predict a completion token
    return ids, target_mask, sum(len(r) for r in rows), longest * len(rows)


def real_batches(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    preset = json.load(open(args.preset))[args.role]
    c, sft = preset["model"], preset["sft"]
    batches = [padded(json.loads(l)) for l in open(args.batches) if l.strip()]
    if len(batches) <= args.warmup:
        sys.exit(f"peer_pytorch_sft: {args.batches} has {len(batches)} batches, need more than {args.warmup}")
    m = Model(c)
    opt = optimizer(m, sft.get("lr", 1e-3), sft.get("weight_decay", 0.0))
    for ids, mask, _, _ in batches[: args.warmup]:
        train_step(m, opt, ids, mask)
    t0, real, computed = time.time(), 0, 0
    for ids, mask, r, comp in batches[args.warmup:]:
        loss = train_step(m, opt, ids, mask)
        real, computed = real + r, computed + comp
    secs, n = time.time() - t0, len(batches) - args.warmup
    print(f"python3-torch {torch.__version__} {args.role} d={c['hidden_size']}: {n / secs:.3f} steps/s "
          f"{real / secs:.0f} real_tokens/s padding {1 - real / computed:.3f} last_loss {loss:.4f} "
          f"({args.threads} thread(s))")


if __name__ == "__main__":
    if len(sys.argv) <= 2 and not any(a.startswith("--") for a in sys.argv[1:]):
        fixed_shapes(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    else:
        ap = argparse.ArgumentParser()
        ap.add_argument("--batches", required=True)
        ap.add_argument("--preset", required=True)
        ap.add_argument("--role", default="device")
        ap.add_argument("--threads", type=int, default=1)
        ap.add_argument("--warmup", type=int, default=5)
        real_batches(ap.parse_args())
