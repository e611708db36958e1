#!/usr/bin/env python3
"""PyTorch side of the GPU training benchmark (issue 8; peers in /work/shared/GPU.md).

Trains a decoder the way a strong PyTorch user would on one GPU: fp32 master weights, bf16
autocast, scaled_dot_product_attention (flash backend on the GPU), fused AdamW, gradient clipping
at 1.0 (as `mindllm train` clips by default), torch.compile, on random tokens. Warmup steps first
(they include compilation), then timed steps, each ended by a device synchronisation.

Shapes (--shape), as GPU.md measures them:
  llama-1.3b  24 layers, d 2048, 16 heads, SwiGLU 5632, vocab 64000, seq 2048, micro-batch 8
  llama-3b    32 layers, d 2560, 20 heads, SwiGLU 6912, vocab 64000, seq 2048, micro-batch 4
  llama-124m  12 layers, d 768, 12 heads, SwiGLU 2048, vocab 50304, seq 1024, micro-batch 64
  gpt2-124m   GPT-2: 12 layers, d 768, 12 heads, learned positions, LayerNorm, GELU (tanh), biases,
              tied embeddings, vocab 50304, seq 1024, micro-batch 64
LLaMA shapes: RMSNorm, RoPE (theta 1e4), no biases, untied head, no GQA.

--print-config writes the shape's Hugging Face config.json, so `mindllm train --model config.json`
trains the identical model; --config reads such a file back (run.sh uses one file for both).

Implementations (--impl): `plain` (default), a self-contained module of the same math with fused
qkv / gate-up projections and F.scaled_dot_product_attention(is_causal=True), so the flash
kernel is certain; `hf`, transformers' LlamaForCausalLM / GPT2LMHeadModel with
attn_implementation="sdpa".

Compilation (--compile): `regional` (default) compiles each transformer block (identical blocks
share one compiled graph) and the final norm + head + loss: the same fused kernels as compiling
the whole model, at a fraction of the cold-start time, which matters in a short GPU session;
`full` compiles the whole loss function; `none` runs eager (GPU.md's eager peer).

MFU: model FLOPs per token = 6 × (all parameters except the input embedding tables) + 12·L·d·T
(GPU.md), over --peak-tflops (989, the H100/H200 dense bf16 datasheet figure). Input embedding
tables: the token table when untied, and GPT-2's position table; a tied table counts once, as
the output head.

Prints one JSON line on stdout: tokens/s (mean over the timed steps), MFU, peak memory, step
times. --tiny shrinks the shape to 2 layers of width 128 for a quick smoke run (CPU included).
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_tools import LLAMA_COMMON, PEAK_TFLOPS  # noqa: E402

# shape -> (config, micro-batch, sequence length)
SHAPES = {
    "llama-1.3b": (dict(LLAMA_COMMON, vocab_size=64000, hidden_size=2048, intermediate_size=5632,
                        num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16,
                        max_position_embeddings=2048), 8, 2048),
    "llama-3b": (dict(LLAMA_COMMON, vocab_size=64000, hidden_size=2560, intermediate_size=6912,
                      num_hidden_layers=32, num_attention_heads=20, num_key_value_heads=20,
                      max_position_embeddings=2048), 4, 2048),
    "llama-124m": (dict(LLAMA_COMMON, vocab_size=50304, hidden_size=768, intermediate_size=2048,
                        num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12,
                        max_position_embeddings=1024), 64, 1024),
    "gpt2-124m": ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50304,
                   "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
                   "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
                   "initializer_range": 0.02, "tie_word_embeddings": True}, 64, 1024),
}


def tiny(cfg):
    """The same family at smoke-test size."""
    cfg = dict(cfg)
    if cfg["model_type"] == "gpt2":
        cfg.update(vocab_size=512, n_embd=128, n_layer=2, n_head=4, n_positions=64)
    else:
        cfg.update(vocab_size=512, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    return cfg


def dims(cfg):
    """(layers, width, query heads, kv heads, ffn width, vocab, positions) of a HF config."""
    if cfg["model_type"] == "gpt2":
        d = cfg["n_embd"]
        return cfg["n_layer"], d, cfg["n_head"], cfg["n_head"], cfg.get("n_inner") or 4 * d, cfg["vocab_size"], \
            cfg["n_positions"]
    H = cfg["num_attention_heads"]
    return (cfg["num_hidden_layers"], cfg["hidden_size"], H, cfg.get("num_key_value_heads") or H,
            cfg["intermediate_size"], cfg["vocab_size"], cfg["max_position_embeddings"])


def param_counts(cfg):
    """(all parameters, parameters of input-only embedding tables), counted from the config."""
    L, d, H, KV, F, V, P = dims(cfg)
    tied = cfg.get("tie_word_embeddings", cfg["model_type"] == "gpt2")
    if cfg["model_type"] == "gpt2":
        block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * F + F) + (F * d + d)
        total = V * d + P * d + L * block + 2 * d + (0 if tied else V * d)
        input_only = P * d + (0 if tied else V * d)
    else:
        hd = d // H
        block = 2 * d + d * H * hd + 2 * d * KV * hd + H * hd * d + 3 * d * F
        total = V * d + L * block + d + (0 if tied else V * d)
        input_only = 0 if tied else V * d
    return total, input_only


def flops_per_token(cfg, seq):
    L, d = dims(cfg)[:2]
    total, input_only = param_counts(cfg)
    return 6 * (total - input_only) + 12 * L * d * seq


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama-1.3b")
    p.add_argument("--config", help="a Hugging Face config.json (llama or gpt2) instead of --shape's dims "
                   "(--shape still names the run and gives the default batch)")
    p.add_argument("--batch", type=int, help="micro-batch (default: the shape's)")
    p.add_argument("--seq", type=int, help="sequence length (default: the shape's)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--impl", choices=["plain", "hf"], default="plain")
    p.add_argument("--compile", choices=["regional", "full", "none"], default="regional")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS, help="MFU denominator (default 989)")
    p.add_argument("--tiny", action="store_true",
                   help="smoke test: the shape's family at 2 layers x 128, seq 64, batch 2, eager unless --compile is given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--print-config", action="store_true", help="print the shape's config.json and exit")
    p.add_argument("--print-shape", action="store_true",
                   help="print 'batch seq vocab flops_per_token' for the shape and exit (run.sh reads it)")
    args = p.parse_args()
    args.compile_given = any(a == "--compile" or a.startswith("--compile=") for a in sys.argv[1:])
    return args


def resolve_shape(args):
    cfg, batch, seq = SHAPES[args.shape]
    cfg = dict(cfg)
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
        seq = dims(cfg)[6]
    if args.tiny:
        cfg, batch, seq = tiny(cfg), 2, 64
    batch = args.batch or batch
    seq = args.seq or seq
    return cfg, batch, seq


# ---------------------------------------------------------------------------------------------
# Models. Each builder returns (module, loss_fn(x, y) -> scalar loss, regions to compile).


def build_plain(cfg, seq):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    L, d, H, KV, FF, V, P = dims(cfg)
    hd = d // H
    gpt2 = cfg["model_type"] == "gpt2"
    std = cfg.get("initializer_range", 0.02)

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = cfg.get("rms_norm_eps", 1e-5)

        def forward(self, x):
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight

    def norm():
        return nn.LayerNorm(d, eps=cfg.get("layer_norm_epsilon", 1e-5)) if gpt2 else RMSNorm()

    def rotate_half(x):
        return torch.cat((-x[..., hd // 2:], x[..., : hd // 2]), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = norm(), norm()
            self.qkv = nn.Linear(d, (H + 2 * KV) * hd, bias=gpt2)
            self.proj = nn.Linear(H * hd, d, bias=gpt2)
            if gpt2:
                self.fc = nn.Linear(d, FF, bias=True)
            else:
                self.gate_up = nn.Linear(d, 2 * FF, bias=False)
            self.down = nn.Linear(FF, d, bias=gpt2)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split([H * hd, KV * hd, KV * hd], dim=-1)
            q = q.view(B, T, H, hd).transpose(1, 2)
            k = k.view(B, T, KV, hd).transpose(1, 2)
            v = v.view(B, T, KV, hd).transpose(1, 2)
            if not gpt2:
                c, s = cos.to(q.dtype), sin.to(q.dtype)
                q, k = q * c + rotate_half(q) * s, k * c + rotate_half(k) * s
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != KV)
            x = x + self.proj(a.transpose(1, 2).reshape(B, T, H * hd))
            h = self.ln2(x)
            if gpt2:
                h = F.gelu(self.fc(h), approximate="tanh")
            else:
                g, u = self.gate_up(h).chunk(2, dim=-1)
                h = F.silu(g) * u
            return x + self.down(h)

    class HeadLoss(nn.Module):
        """Final norm, output head and mean cross-entropy (fp32 logits math under autocast)."""

        def __init__(self):
            super().__init__()
            self.norm = norm()

        def forward(self, h, weight, y):
            logits = F.linear(self.norm(h), weight)
            return F.cross_entropy(logits.float().view(-1, V), y.reshape(-1))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, d)
            self.wpe = nn.Embedding(P, d) if gpt2 else None
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.final = HeadLoss()
            self.head = None if cfg.get("tie_word_embeddings", gpt2) else nn.Linear(d, V, bias=False)
            for name, prm in self.named_parameters():
                if prm.dim() == 2:
                    # GPT-2's scaled init of the residual projections
                    scale = 1 / math.sqrt(2 * L) if gpt2 and name.endswith(("proj.weight", "down.weight")) else 1
                    nn.init.normal_(prm, std=std * scale)
                elif name.endswith("bias"):
                    nn.init.zeros_(prm)
            inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
            f = torch.outer(torch.arange(seq).float(), inv_freq)
            emb = torch.cat((f, f), dim=-1)
            self.register_buffer("cos", emb.cos(), persistent=False)
            self.register_buffer("sin", emb.sin(), persistent=False)

        def forward(self, x, y):
            T = x.shape[1]
            h = self.wte(x)
            if self.wpe is not None:
                h = h + self.wpe(torch.arange(T, device=x.device))
            cos, sin = self.cos[:T], self.sin[:T]
            for b in self.blocks:
                h = b(h, cos, sin)
            return self.final(h, self.wte.weight if self.head is None else self.head.weight, y)

    model = Model()
    return model, model, list(model.blocks) + [model.final]


def build_hf(cfg, seq):
    import torch.nn.functional as F

    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    if cfg["model_type"] == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        model = GPT2LMHeadModel._from_config(GPT2Config(**fields), attn_implementation="sdpa")
        regions = list(model.transformer.h)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        model = LlamaForCausalLM._from_config(LlamaConfig(**fields), attn_implementation="sdpa")
        regions = list(model.model.layers)
    V = dims(cfg)[5]

    def loss_fn(x, y):
        logits = model(input_ids=x, use_cache=False).logits
        return F.cross_entropy(logits.float().view(-1, V), y.reshape(-1))

    return model, loss_fn, regions


def main():
    args = parse_args()
    cfg, batch, seq = resolve_shape(args)
    if args.print_config:
        print(json.dumps(cfg, indent=2))
        return
    if args.print_shape:
        print(batch, seq, dims(cfg)[5], flops_per_token(cfg, seq))
        return
    if args.tiny and not args.compile_given:
        args.compile = "none"

    import torch

    dev = torch.device(args.device)
    on_gpu = dev.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        sys.exit("torch_train.py: no CUDA device (use --device cpu --tiny for a smoke run)")
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True  # the few fp32 matmuls left outside autocast
    torch.backends.cudnn.allow_tf32 = True

    t_build = time.perf_counter()
    with dev:  # parameters are created (and initialised) on the device: no 12 GB CPU init for 3B
        model, loss_fn, regions = (build_plain if args.impl == "plain" else build_hf)(cfg, seq)
    model.to(dev).train()
    params = sum(p.numel() for p in model.parameters())  # shared (tied) tensors once
    total, input_only = param_counts(cfg)
    if params != total:
        print(f"torch_train.py: warning: model has {params} parameters, the config formula {total}", file=sys.stderr)
    fpt = flops_per_token(cfg, seq)

    if args.compile == "regional":
        for r in regions:
            r.compile()
    elif args.compile == "full":
        loss_fn = torch.compile(loss_fn)

    # Matrices decay, vectors (norm weights, biases) and embedding tables do not (mindllm's default).
    emb = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    decay = [p for p in model.parameters() if p.dim() >= 2 and id(p) not in emb]
    no_decay = [p for p in model.parameters() if p.dim() < 2 or id(p) in emb]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=on_gpu)
    V = dims(cfg)[5]
    gen = torch.Generator(device=dev).manual_seed(args.seed)

    def step():
        tok = torch.randint(0, V, (batch, seq + 1), device=dev, generator=gen)
        x, y = tok[:, :-1], tok[:, 1:]
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            loss = loss_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=on_gpu)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if on_gpu:
            torch.cuda.synchronize()

    sync()
    build_s = time.perf_counter() - t_build
    t_warm = time.perf_counter()
    for i in range(args.warmup):
        loss = step()
        sync()
        print(f"warmup step {i + 1}/{args.warmup}: loss {loss.item():.4f} ({time.perf_counter() - t_warm:.1f} s)",
              file=sys.stderr)
    warmup_s = time.perf_counter() - t_warm
    times, losses = [], []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    tokens_per_step = batch * seq
    tps = tokens_per_step * len(times) / sum(times) if times else 0.0
    result = {
        "side": "pytorch",
        "shape": args.shape + ("-tiny" if args.tiny else ""),
        "config": args.config,
        "impl": {"plain": "plain torch module (fused qkv, SDPA is_causal)",
                 "hf": "transformers (attn_implementation=sdpa)"}[args.impl],
        "compile": args.compile,
        "device": torch.cuda.get_device_name(dev) if on_gpu else "cpu",
        "tokens_per_s": tps,
        "mfu": tps * fpt / (args.peak_tflops * 1e12),
        "flops_per_token": fpt,
        "params": params,
        "params_counted_for_flops": total - input_only,
        "batch": batch,
        "seq": seq,
        "median_step_s": sorted(times)[len(times) // 2] if times else None,
        "best_step_tokens_per_s": tokens_per_step / min(times) if times else None,
        "step_times_s": [round(t, 5) for t in times],
        "peak_mem_gib": torch.cuda.max_memory_allocated(dev) / 2**30 if on_gpu else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(dev) / 2**30 if on_gpu else None,
        "build_s": build_s,
        "warmup_s": warmup_s,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
