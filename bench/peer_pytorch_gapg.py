#!/usr/bin/python3
"""The python3-torch peer of a GAPG step (issue 18): the same work as `handoff train --algo gapg
--call-rate-control none` on the same kernels (Debian's python3-torch runs the same ATen and OpenBLAS as our
libtorch), written as a careful PyTorch programmer would write it. Per step: G samples of each of the step's
prompts in one batch (left-padded prompts, KV cache, finished rows dropped from the batch once they are a
third of it), parsing and verifying each reply, the hierarchical reward (paper §3.2), the adaptive prompt
filter under the budget ρ with the remainder carried (§3.3), GAPG's group advantages (§3.3) and one AdamW
step over length-sorted micro-batches of at most update_tokens padded tokens. The prompts, their answers and
the cloud's verdicts (its answers cached) come from bench_gapg_inputs, the weights from the device checkpoint.

Usage: peer_pytorch_gapg.py INPUTS.jsonl DEVICE_DIR [--threads N] [--attention matmul|multiply-sum]
Prints the mean seconds per step after the first, the call rate and the mean reward.
"""
import argparse, json, math, random, struct, time
import torch
import torch.nn.functional as F


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8: 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{name}: {t['dtype']}"
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a: 8 + n + b]), dtype=torch.float32).view(t["shape"])
    return out


class Model:
    """A Llama decoder over HF-named weights (RMSNorm, RoPE, SwiGLU, tied or untied LM head)."""

    def __init__(self, cfg, weights, attention):
        self.c, self.attention = cfg, attention
        self.w = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
        self.H, self.KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = cfg["hidden_size"] // self.H
        inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, self.hd, 2).float() / self.hd))
        ang = torch.arange(cfg["max_position_embeddings"]).float()[:, None] * inv[None]
        self.cos, self.sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()

    def params(self):
        return list(self.w.values())

    def norm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * self.w[name]

    def rope(self, x, pos):  # x [B, h, T, hd], pos [B, T]
        cos, sin = self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1)
        h = self.hd // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin

    def attend(self, q, k, v, bias):  # q [B, H, T, hd], k/v [B, KV, S, hd], bias [B, 1, T, S]
        g = self.H // self.KV
        B, T = q.shape[0], q.shape[2]
        qg = q.reshape(B, self.KV, g, T, self.hd)
        if self.attention == "multiply-sum" and T == 1:  # one query: no per-(row, head) GEMM
            s = (qg * k.unsqueeze(2)).sum(-1) / math.sqrt(self.hd) + bias  # [B, KV, g, S]
            o = (torch.softmax(s, -1).unsqueeze(-1) * v.unsqueeze(2)).sum(-2)
        else:
            s = qg @ k.unsqueeze(2).transpose(-1, -2) / math.sqrt(self.hd) + bias.unsqueeze(1)
            o = torch.softmax(s, -1) @ v.unsqueeze(2)
        return o.reshape(B, self.H, T, self.hd).transpose(1, 2).reshape(B, T, -1)

    def forward(self, ids, pos, key_valid, cache=None):
        """Logits [B, T, V]; with a cache (lists of K, V per layer, and its filled length) appends to it."""
        B, T = ids.shape
        start = cache["len"] if cache else 0
        S = start + T
        causal = torch.arange(S)[None, :] <= torch.arange(start, S)[:, None]
        allowed = causal[None] & key_valid[:, None, :S]
        bias = torch.zeros(allowed.shape).masked_fill(~allowed, -1e30).unsqueeze(1)
        x = F.embedding(ids, self.w["model.embed_tokens.weight"])
        for i in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.norm(x, p + "input_layernorm.weight")
            q = (h @ self.w[p + "self_attn.q_proj.weight"].t()).view(B, T, self.H, self.hd).transpose(1, 2)
            k = (h @ self.w[p + "self_attn.k_proj.weight"].t()).view(B, T, self.KV, self.hd).transpose(1, 2)
            v = (h @ self.w[p + "self_attn.v_proj.weight"].t()).view(B, T, self.KV, self.hd).transpose(1, 2)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if cache:
                cache["k"][i][:, :, start:S] = k
                cache["v"][i][:, :, start:S] = v
                k, v = cache["k"][i][:, :, :S], cache["v"][i][:, :, :S]
            x = x + self.attend(q, k, v, bias) @ self.w[p + "self_attn.o_proj.weight"].t()
            h = self.norm(x, p + "post_attention_layernorm.weight")
            gate = F.silu(h @ self.w[p + "mlp.gate_proj.weight"].t()) * (h @ self.w[p + "mlp.up_proj.weight"].t())
            x = x + gate @ self.w[p + "mlp.down_proj.weight"].t()
        if cache:
            cache["len"] = S
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        return self.norm(x, "model.norm.weight") @ head.t()


@torch.no_grad()
def sample(model, prompts, meta):
    """Rows of (tokens, logprobs, ended_with_eos), temperature sampling with a KV cache."""
    B, P = len(prompts), max(len(p) for p in prompts)
    steps = min(meta["max_new_tokens"], model.c["max_position_embeddings"] - P)
    ids = torch.zeros(B, P, dtype=torch.long)
    pos = torch.zeros(B, P, dtype=torch.long)
    valid = torch.zeros(B, P + steps, dtype=torch.bool)
    for b, p in enumerate(prompts):
        ids[b, P - len(p):] = torch.tensor(p)
        pos[b, P - len(p):] = torch.arange(len(p))
        valid[b, P - len(p):] = True
    nxt = torch.tensor([len(p) for p in prompts])
    cache = {"k": [torch.zeros(B, model.KV, P + steps, model.hd) for _ in range(model.c["num_hidden_layers"])],
             "len": 0}
    cache["v"] = [torch.zeros_like(k) for k in cache["k"]]
    logits = model.forward(ids, pos, valid, cache)[:, -1]
    stops = set(meta["stop_ids"])
    out = [([], [], False) for _ in range(B)]
    active, finished = list(range(B)), set()
    for t in range(steps):
        lp = torch.log_softmax(logits, -1)
        tok = torch.multinomial(torch.softmax(logits / meta["temperature"], -1), 1)
        tok_lp = lp.gather(1, tok).squeeze(1)
        for b, x, l in zip(active, tok.squeeze(1).tolist(), tok_lp.tolist()):
            if b in finished:
                continue
            out[b][0].append(x)
            out[b][1].append(l)
            if x in stops:
                out[b] = (out[b][0], out[b][1], x == meta["eos_id"])
                finished.add(b)
        if len(finished) == B or t + 1 == steps:
            break
        valid[:, P + t] = True  # the key column of the token fed next
        if sum(b in finished for b in active) * 3 >= len(active):  # drop finished rows from the batch
            keep = torch.tensor([i for i, b in enumerate(active) if b not in finished])
            active = [active[i] for i in keep.tolist()]
            cache["k"] = [k.index_select(0, keep) for k in cache["k"]]
            cache["v"] = [v.index_select(0, keep) for v in cache["v"]]
            valid, nxt, tok = valid.index_select(0, keep), nxt.index_select(0, keep), tok.index_select(0, keep)
        logits = model.forward(tok, (nxt + t).unsqueeze(1), valid, cache)[:, 0]
    return out


def parse(tokens, ended_with_eos, meta):
    """(kind, answer, well_formatted): the hand-off token last, else what follows the last 'Answer:'."""
    if tokens and tokens[-1] == meta["handoff_id"]:
        return "handoff", None, False
    text = "".join(meta["vocab"][t] for t in tokens if t not in meta["stop_ids"]).rstrip()
    at = text.rfind("Answer:")
    if at < 0:
        return "format_error", None, False
    answer = text[at + len("Answer:"):].split("\n")[0].strip()
    if not answer:
        return "format_error", None, False
    well = ended_with_eos and text.count("Answer:") == 1 and "<handoff>" not in text
    return "local", answer, well


def numeric_equal(a, b):
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def step_batch(model, opt, prompts, meta, credit, rng):
    G = meta["group"]
    rows = sample(model, [p["ids"] for p in prompts for _ in range(G)], meta)
    rewards, local_correct, calls = [], [0] * len(prompts), 0
    for i, (tokens, _, eos) in enumerate(rows):
        p = prompts[i // G]
        kind, answer, well = parse(tokens, eos, meta)
        if kind == "local":
            ok = numeric_equal(answer, p["answer"])
            local_correct[i // G] += ok
            rewards.append((meta["alpha_a"] if ok else 0.0) + (meta["alpha_f"] if well else 0.0))
        elif kind == "handoff":
            calls += 1
            rewards.append(meta["alpha_c"] if p["cloud_correct"] else 0.0)
        else:
            rewards.append(0.0)
    # Adaptive prompt filter (§3.3): D1 = prompts with a local success; D2 ⊆ cloud-solvable rest, ≤ ρ|D1|.
    d1 = [j for j in range(len(prompts)) if local_correct[j] > 0]
    d2 = [j for j in range(len(prompts)) if local_correct[j] == 0 and prompts[j]["cloud_correct"]]
    credit = min(credit, 1.0) + meta["rho"] * len(d1)
    cap = min(int(math.floor(credit + 1e-9)), len(d2))
    credit = max(0.0, credit - cap)
    kept = sorted(d1 + rng.sample(d2, cap))
    batch = []
    for j in kept:  # GAPG advantages (§3.3): (r_i − r̄) / (G − 1)
        group = rewards[j * G:(j + 1) * G]
        mean = sum(group) / G
        for g in range(G):
            adv = (group[g] - mean) / (G - 1)
            if adv != 0.0 and rows[j * G + g][0]:
                batch.append((prompts[j]["ids"], rows[j * G + g][0], adv))
    opt.zero_grad()
    if batch:
        batch.sort(key=lambda r: len(r[0]) + len(r[1]))
        parts, cur = [], []
        for r in batch:  # length-sorted micro-batches of at most update_tokens padded tokens
            if cur and (len(cur) + 1) * (len(r[0]) + len(r[1])) > meta["update_tokens"]:
                parts.append(cur)
                cur = []
            cur.append(r)
        parts.append(cur)
        for part in parts:
            policy_loss(model, part, len(kept)).backward()
        torch.nn.utils.clip_grad_norm_(model.params(), meta["grad_clip"])
        opt.step()
    return credit, calls / len(rows), sum(rewards) / len(rows)


def policy_loss(model, part, kept_prompts):
    L = max(len(p) + len(c) for p, c, _ in part)
    ids = torch.zeros(len(part), L, dtype=torch.long)
    mask = torch.zeros(len(part), L - 1)
    valid = torch.zeros(len(part), L, dtype=torch.bool)
    for i, (p, c, _) in enumerate(part):  # right-padded: the causal mask keeps real tokens off the padding
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        mask[i, len(p) - 1: len(p) + len(c) - 1] = 1
        valid[i, : len(p) + len(c)] = True
    pos = torch.arange(L).unsqueeze(0).expand(len(part), L)
    lp = torch.log_softmax(model.forward(ids, pos, valid)[:, :-1], -1).gather(2, ids[:, 1:, None]).squeeze(-1)
    adv = torch.tensor([a for _, _, a in part]).unsqueeze(1)
    return -(lp * mask * adv).sum() / kept_prompts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs")
    ap.add_argument("device_dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attention", choices=["matmul", "multiply-sum"], default="matmul")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    lines = [json.loads(l) for l in open(a.inputs) if l.strip()]
    meta, steps = lines[0]["meta"], lines[1:]
    cfg = json.load(open(f"{a.device_dir}/config.json"))
    model = Model(cfg, load_safetensors(f"{a.device_dir}/model.safetensors"), a.attention)
    opt = torch.optim.AdamW(model.params(), lr=meta["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    credit, rng, times, rates, rewards = 0.0, random.Random(2), [], [], []
    for s in steps:
        t0 = time.time()
        credit, rate, reward = step_batch(model, opt, s["prompts"], meta, credit, rng)
        times.append(time.time() - t0)
        rates.append(rate)
        rewards.append(reward)
    timed = times[1:] or times
    print(f"python3-torch {torch.__version__} GAPG ({a.attention} attention, {a.threads} thread(s)): "
          f"{sum(timed) / len(timed):.3f} s/step over {len(timed)} steps; call rate {sum(rates) / len(rates):.3f} "
          f"reward {sum(rewards) / len(rewards):.3f}")


if __name__ == "__main__":
    main()
