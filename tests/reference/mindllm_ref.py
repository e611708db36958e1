"""Shared helpers for the reference tests: run the mindllm binary, build tiny Hugging Face models
with every parameter randomised, and a float64 PyTorch reference of mindllm's llama-family decoder
(for the options transformers lacks: DeepNorm, partial rotary)."""
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
MINDLLM = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))


def run(*args, check=True, **kw):
    """Runs `mindllm args...`; returns the CompletedProcess (stdout/stderr as text)."""
    p = subprocess.run([MINDLLM, *map(str, args)], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"mindllm {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}")
    return p


def write_shard(path, tokens, vocab_size):
    """llm.c-format shard: 256 int32 header then uint16 (vocab <= 65536) or uint32 ids."""
    tokens = np.asarray(tokens)
    header = np.zeros(256, dtype=np.int32)
    wide = vocab_size > 65536
    header[0], header[1] = (20240801, 7) if wide else (20240520, 1)
    header[2], header[3] = len(tokens), vocab_size
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype(np.uint32 if wide else np.uint16).tobytes())


def randomize_(model, seed=0, scale=0.2):
    """Every parameter random (biases and norm weights too), so no zero hides a missing term."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if "norm" in name or "ln_" in name:
                p.copy_((1.0 + 0.1 * r) if name.endswith("weight") else 0.1 * r)
            else:
                p.copy_(scale * r / math.sqrt(max(1, p.shape[-1] if p.dim() > 1 else 16)) * 4)
    return model


def mindllm_forward(model_dir, ids, targets, tmp, grads=True, extra=(), position_ids=None):
    """Runs `mindllm forward`; returns (logits, loss, {param name: grad}) as float64 tensors.
    position_ids: packed samples (positions restarting at 0 for each)."""
    tok = Path(tmp) / "tokens.safetensors"
    tensors = {"input_ids": torch.as_tensor(ids, dtype=torch.int32).contiguous(),
               "targets": torch.as_tensor(targets, dtype=torch.int32).contiguous()}
    if position_ids is not None:
        tensors["position_ids"] = torch.as_tensor(position_ids, dtype=torch.int32).contiguous()
    save_file(tensors, str(tok))
    out = Path(tmp) / "forward.safetensors"
    run("forward", "--model", model_dir, "--tokens", tok, "--out", out, *(["--grads"] if grads else []), *extra)
    t = load_file(str(out))
    g = {k[5:]: v.double() for k, v in t.items() if k.startswith("grad.")}
    return t["logits"].double(), float(t["loss"][0]), g


def mean_ce(logits, targets):
    targets = torch.as_tensor(targets, dtype=torch.long)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=-1)


def rel_err(a, b):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / max(1e-12, float(b.abs().max())))


# ---- float64 reference of mindllm's llama-family decoder (incl. DeepNorm and partial rotary) ----

def _rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope(x, theta, rot):
    # x: [B, T, H, D]; rotate_half convention on the first `rot` dims.
    T = x.shape[1]
    half = rot // 2
    inv = 1.0 / theta ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    a, b, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)


def _act(name):
    return {"silu": torch.nn.functional.silu,
            "gelu": lambda v: torch.nn.functional.gelu(v),
            "gelu_pytorch_tanh": lambda v: torch.nn.functional.gelu(v, approximate="tanh")}[name]


def llama_reference_logits(W, cfg, ids):
    """W: {name: float64 tensor requiring grad}; cfg: mindllm config.json dict; ids [B, T]."""
    C, L, H = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim", C // H)
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    rot = int(round(D * cfg.get("mindllm_partial_rotary_factor", 1.0)))
    rot -= rot % 2
    act = _act(cfg["hidden_act"])
    deep = cfg.get("mindllm_deepnorm", False)
    alpha = cfg.get("mindllm_deepnorm_alpha", (2 * L) ** 0.25) if deep else 1.0
    ids = torch.as_tensor(ids, dtype=torch.long)
    B, T = ids.shape
    x = W["model.embed_tokens.weight"][ids]
    mask = torch.ones(T, T, dtype=torch.bool).tril()

    def lin(v, name):
        y = v @ W[name + ".weight"].T
        return y + W[name + ".bias"] if name + ".bias" in W else y

    for l in range(L):
        p = f"model.layers.{l}."

        def attn(v):
            q = lin(v, p + "self_attn.q_proj").view(B, T, H, D)
            k = lin(v, p + "self_attn.k_proj").view(B, T, KV, D)
            vv = lin(v, p + "self_attn.v_proj").view(B, T, KV, D)
            if rot > 0:
                q, k = _rope(q, theta, rot), _rope(k, theta, rot)
            k = k.repeat_interleave(H // KV, dim=2)
            vv = vv.repeat_interleave(H // KV, dim=2)
            s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(D)
            s = s.masked_fill(~mask, float("-inf")).softmax(-1)
            o = torch.einsum("bhts,bshd->bthd", s, vv).reshape(B, T, H * D)
            return lin(o, p + "self_attn.o_proj")

        def mlp(v):
            return lin(act(lin(v, p + "mlp.gate_proj")) * lin(v, p + "mlp.up_proj"), p + "mlp.down_proj")

        n1, n2 = W[p + "input_layernorm.weight"], W[p + "post_attention_layernorm.weight"]
        if deep:
            x = _rms(alpha * x + attn(x), n1, eps)
            x = _rms(alpha * x + mlp(x), n2, eps)
        else:
            h = x + attn(_rms(x, n1, eps))
            x = h + mlp(_rms(h, n2, eps))
    x = _rms(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return x @ head.T


def write_model_dir(path, cfg, tensors):
    """A mindllm/HF model directory from a config dict and {name: tensor}."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))


def tiny_chat_model(d, corpus_text, config=None):
    """A tiny-llama model directory (one `mindllm train` step on random tokens) with a 400-token
    BPE trained on `corpus_text` whose special tokens are <|endoftext|>, <|im_start|>, <|im_end|>
    (ChatML); for the sft/chat/serve CLI tests. config: a config dict instead of the tiny-llama
    preset. Returns the checkpoint directory."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    model = "tiny-llama"
    if config is not None:
        model = d / "config.json"
        model.write_text(json.dumps(config))
    (d / "corpus.txt").write_text(corpus_text)
    run("tokenizer", "train", "--input", d / "corpus.txt", "--vocab-size", 400, "--special", "<|endoftext|>",
        "--special", "<|im_start|>", "--special", "<|im_end|>", "--output", d / "tokenizer.json", "--quiet")
    (d / "shards").mkdir()
    write_shard(d / "shards" / "train-000.bin", np.random.default_rng(0).integers(0, 400, 5000), 512)
    run("train", "--model", model, "--data", d / "shards", "--tokenizer", d / "tokenizer.json",
        "--out", d / "run", "--steps", 1, "--batch", 2, "--seq", 32, "--threads", 2)
    return d / "run" / "ckpt" / "step-0000001"
