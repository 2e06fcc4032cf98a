#!/usr/bin/python3
"""Independent reference forward pass of a Llama/Qwen2/Qwen3 checkpoint, for the C++ parity test.

Implements the Hugging Face modelling equations (modeling_llama.py / modeling_qwen2.py / modeling_qwen3.py)
directly in torch,
in float64, reading config.json and *.safetensors with a small reader of its own (no `safetensors` or
`transformers` package needed):

  RMSNorm      x / sqrt(mean(x^2) + eps) * w
  RoPE         q*cos + rotate_half(q)*sin, rotate_half(x) = cat(-x2, x1), inv_freq = theta^(-2i/d),
               with "llama3" frequency scaling (Llama 3.1) when config.rope_scaling asks for it
  attention    GQA by repeat_kv, causal softmax(q k^T / sqrt(d)) v; q/k/v bias for qwen2 (or attention_bias);
               qwen3: RMSNorm of each head's q and k (q_norm, k_norm) before RoPE, head_dim from config
  MLP          down(silu(gate(x)) * up(x))
  LM head      lm_head.weight, or model.embed_tokens.weight when tie_word_embeddings

Usage: reference_forward.py CHECKPOINT_DIR TOKEN_ID [TOKEN_ID ...]
Prints {"logits": [[...V floats...] per position]} as JSON on stdout.
"""
import json
import math
import os
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def read_safetensors(path):
    """{name: float64 tensor} from one .safetensors file (8-byte LE header length, JSON header, data)."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data = blob[8 + header_len:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        count = end - begin
        assert count == size * math.prod(shape), f"{path}: {name}: byte count does not match shape"
        raw = bytearray(data[begin:end])  # writable copy: torch.frombuffer warns on read-only buffers
        if dtype == torch.bfloat16:
            # bf16 is the top half of a float32: widen through int32 so no bf16 kernel is needed.
            bits = torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) << 16
            t = bits.view(torch.float32)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        out[name] = t.reshape(shape).to(torch.float64)
    return out


def read_weights(ckpt):
    single = os.path.join(ckpt, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(ckpt, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    weights = {}
    for s in shards:
        weights.update(read_safetensors(os.path.join(ckpt, s)))
    return weights


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def inv_frequencies(cfg, head_dim):
    base = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "llama3":  # transformers' _compute_llama3_parameters
        factor = rs["factor"]
        low, high = rs["low_freq_factor"], rs["high_freq_factor"]
        old_len = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    elif kind != "default":
        raise SystemExit(f"rope_scaling type {kind} not implemented in the reference")
    return inv_freq


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):  # [B, n_kv, T, d] -> [B, n_kv * n_rep, T, d]
    b, n_kv, t, d = x.shape
    return x[:, :, None, :, :].expand(b, n_kv, n_rep, t, d).reshape(b, n_kv * n_rep, t, d)


def forward(cfg, w, ids):
    d = cfg["hidden_size"]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_heads)
    head_dim = cfg.get("head_dim", d // n_heads)
    eps = cfg["rms_norm_eps"]
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    tied = cfg.get("tie_word_embeddings", False)  # HF's default for both LlamaConfig and Qwen2Config

    T = len(ids)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)].unsqueeze(0)  # [1, T, D]
    pos = torch.arange(T, dtype=torch.float64)
    freqs = torch.outer(pos, inv_frequencies(cfg, head_dim))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    def linear(x, name, bias=False):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if bias else y

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, p + "self_attn.q_proj", qkv_bias).view(1, T, n_heads, head_dim)
        k = linear(h, p + "self_attn.k_proj", qkv_bias).view(1, T, n_kv, head_dim)
        if cfg["model_type"] == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj", qkv_bias).view(1, T, n_kv, head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, n_heads // n_kv), repeat_kv(v, n_heads // n_kv)
        scores = q @ k.transpose(2, 3) / math.sqrt(head_dim) + causal
        attn = torch.softmax(scores, dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(1, T, n_heads * head_dim)
        x = x + linear(attn, p + "self_attn.o_proj")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate, up = linear(h, p + "mlp.gate_proj"), linear(h, p + "mlp.up_proj")
        x = x + linear(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]
    return (x @ head.T)[0]


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    ckpt = sys.argv[1]
    ids = [int(a) for a in sys.argv[2:]]
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    if cfg["model_type"] not in ("llama", "qwen2", "qwen3"):
        raise SystemExit(f"model_type {cfg['model_type']} not implemented in the reference")
    with torch.no_grad():
        logits = forward(cfg, read_weights(ckpt), ids)
    json.dump({"logits": logits.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
