#!/usr/bin/env python3
"""PyTorch side of the CPU training benchmark (issue 2).

Trains a LLaMA-style decoder the way users usually run one with PyTorch: Hugging Face
transformers' LlamaForCausalLM (attn_implementation="sdpa"), eager mode, fp32, torch.optim.AdamW
with its default CPU implementation, gradient clipping at 1.0 (as `mindllm train` clips by
default), on random tokens. `--impl plain` uses a small self-contained module instead (same math:
RMSNorm, RoPE in rotate_half form, SwiGLU, untied head, no biases), for a check that the
transformers wrapper is not what dominates.

Prints one JSON line: {"tokens_per_s": ..., "params": ..., ...}. With --profile, also prints the
torch.profiler table of the ops where the time goes (to stderr).
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="LlamaConfig-style config.json (default: the benchmark shape)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--impl", choices=["hf", "plain"], default="hf")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: torch.autocast('cpu', bfloat16) around the forward and loss (fp32 master weights, "
                        "AdamW in fp32): PyTorch's CPU mixed precision, oneDNN's AMX bf16 matmuls")
    p.add_argument("--profile", action="store_true", help="profile 2 extra steps and print the op table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--print-config", action="store_true", help="print the benchmark model's config.json and exit")
    return p.parse_args()


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_tools import LLAMA_COMMON  # noqa: E402

BENCH_CONFIG = dict(LLAMA_COMMON, vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=256)


def build_hf(cfg):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{k: v for k, v in cfg.items() if k != "model_type"})
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa")
    return model, lambda x: model(input_ids=x, use_cache=False).logits


def build_plain(cfg):
    import torch.nn as nn
    import torch.nn.functional as F

    C, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D, FF, V, eps = C // H, cfg["intermediate_size"], cfg["vocab_size"], cfg["rms_norm_eps"]

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(C))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight

    def rotate_half(x):
        return torch.cat((-x[..., D // 2:], x[..., : D // 2]), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = RMSNorm(), RMSNorm()
            self.q = nn.Linear(C, H * D, bias=False)
            self.k = nn.Linear(C, KV * D, bias=False)
            self.v = nn.Linear(C, KV * D, bias=False)
            self.o = nn.Linear(H * D, C, bias=False)
            self.gate = nn.Linear(C, FF, bias=False)
            self.up = nn.Linear(C, FF, bias=False)
            self.down = nn.Linear(FF, C, bias=False)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            h = self.ln1(x)
            q = self.q(h).view(B, T, H, D).transpose(1, 2)
            k = self.k(h).view(B, T, KV, D).transpose(1, 2)
            v = self.v(h).view(B, T, KV, D).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != KV)
            x = x + self.o(a.transpose(1, 2).reshape(B, T, C))
            h = self.ln2(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, C)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg["num_hidden_layers"]))
            self.norm = RMSNorm()
            self.head = nn.Linear(C, V, bias=False)
            for p in self.parameters():
                if p.dim() == 2:
                    nn.init.normal_(p, std=cfg.get("initializer_range", 0.02))

        def forward(self, x):
            T = x.shape[1]
            inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2).float() / D))
            f = torch.outer(torch.arange(T).float(), inv_freq)
            emb = torch.cat((f, f), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            h = self.embed(x)
            for b in self.blocks:
                h = b(h, cos, sin)
            return self.head(self.norm(h))

    model = Llama()
    return model, model


def main():
    args = parse_args()
    if args.print_config:
        print(json.dumps(BENCH_CONFIG, indent=2))
        return
    global torch
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = dict(BENCH_CONFIG)
    if args.config:
        with open(args.config) as f:
            cfg.update(json.load(f))
    model, fwd = build_hf(cfg) if args.impl == "hf" else build_plain(cfg)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    # Matrices decay, vectors (norm weights) do not: the usual GPT/LLaMA recipe, and mindllm's.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    V, B, T = cfg["vocab_size"], args.batch, args.seq
    g = torch.Generator().manual_seed(args.seed)

    def step():
        tok = torch.randint(0, V, (B, T + 1), generator=g)
        x, y = tok[:, :-1], tok[:, 1:]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            logits = fwd(x)
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, losses = [], []
    cpu0 = time.process_time()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    cpu_per_step = (time.process_time() - cpu0) / args.steps
    tokens = B * T * args.steps
    result = {
        "impl": "transformers LlamaForCausalLM (sdpa)" if args.impl == "hf" else "plain torch module",
        "tokens_per_s": tokens / sum(times),
        "median_step_s": sorted(times)[len(times) // 2],
        # On a shared machine the fastest step is the best estimate of the uncontended rate.
        "best_step_tokens_per_s": B * T / min(times),
        # CPU seconds (all threads) per step: robust to other load when OMP_WAIT_POLICY=passive.
        "cpu_s_per_step": cpu_per_step,
        "params": params,
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "batch": B,
        "seq": T,
        "timed_steps": args.steps,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "torch": torch.__version__,
    }
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), file=sys.stderr)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
