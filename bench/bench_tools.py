#!/usr/bin/env python3
"""Helpers of the training benchmarks (bench/train_cpu/run.sh, bench/train_gpu/run.sh).

  bench_tools.py shards OUT_DIR --vocab V [--train-tokens N] [--val-tokens M] [--seed S]
      Random-token shards in the llm.c format that `mindllm train` reads: a 256 x int32 header (magic 20240520,
      version 1, token count, vocab size), then the ids as uint16 (vocab <= 65536). Writes OUT_DIR/train-000.bin and OUT_DIR/val-000.bin.

  bench_tools.py metrics METRICS_JSONL --warmup W [--flops-per-token F] [--peak-tflops P]
      Throughput of a `mindllm train` run over the steps after the first W: their tokens over their
      summed step times, the fastest step, and MFU when F is given. One JSON line.

  bench_tools.py summary SHAPE MINDLLM_JSON TORCH_JSON
      The final line of one shape: tokens/s and MFU of both sides and the ratio (a side that did
      not run is reported as such).
"""
import argparse
import json
import os
import sys

PEAK_TFLOPS = 989.0  # H100/H200 SXM dense bf16, datasheet: the MFU denominator (GPU.md)

# The LLaMA-style settings both training benchmarks share (Hugging Face config.json fields):
# SwiGLU, RMSNorm, RoPE theta 1e4, untied head, no biases.
LLAMA_COMMON = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
}


def write_shards(args):
    import numpy as np

    if not 0 < args.vocab <= 65536:
        sys.exit(f"bench_tools.py shards: --vocab {args.vocab} does not fit uint16 tokens")
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for name, n in (("train-000.bin", args.train_tokens), ("val-000.bin", args.val_tokens)):
        header = np.zeros(256, dtype=np.int32)
        header[:4] = (20240520, 1, n, args.vocab)
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(header.tobytes())
            f.write(rng.integers(0, args.vocab, n, dtype=np.uint16).tobytes())


def metrics(args):
    rows = []
    with open(args.file) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    timed = [r for r in rows if r["step"] > args.warmup]
    if not timed:
        sys.exit(f"bench_tools.py metrics: no step after the {args.warmup} warmup steps in {args.file}")
    seconds = sum(r["step_time_s"] for r in timed)
    tokens = sum(r["tokens_per_s"] * r["step_time_s"] for r in timed)
    tps = tokens / seconds
    out = {
        "side": "mindllm",
        "tokens_per_s": tps,
        "best_step_tokens_per_s": max(r["tokens_per_s"] for r in timed),
        "step_times_s": [round(r["step_time_s"], 5) for r in timed],
        "timed_steps": len(timed),
        "first_loss": timed[0].get("loss"),
        "last_loss": timed[-1].get("loss"),
    }
    if args.flops_per_token:
        out["flops_per_token"] = args.flops_per_token
        out["mfu"] = tps * args.flops_per_token / (args.peak_tflops * 1e12)
    print(json.dumps(out))


def load(path):
    try:
        with open(path) as f:
            lines = [l for l in f if l.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def summary(args):
    m, t = load(args.mindllm), load(args.torch)

    def side(name, r):
        if not r or "tokens_per_s" not in r:
            return f"{name} not run"
        s = f"{name} {r['tokens_per_s']:,.0f} tok/s"
        if r.get("mfu") is not None:
            s += f" (MFU {100 * r['mfu']:.1f}%)"
        return s

    ratio = "ratio n/a"
    if m and t and m.get("tokens_per_s") and t.get("tokens_per_s"):
        ratio = f"ratio mindllm/pytorch {m['tokens_per_s'] / t['tokens_per_s']:.2f}x"
    print(f"train_gpu {args.shape}: {side('mindllm', m)} | {side('pytorch', t)} | {ratio}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("shards")
    s.add_argument("out")
    s.add_argument("--vocab", type=int, required=True)
    s.add_argument("--train-tokens", type=int, default=1 << 22)
    s.add_argument("--val-tokens", type=int, default=1 << 18)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=write_shards)
    m = sub.add_parser("metrics")
    m.add_argument("file")
    m.add_argument("--warmup", type=int, required=True)
    m.add_argument("--flops-per-token", type=float)
    m.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS)
    m.set_defaults(fn=metrics)
    u = sub.add_parser("summary")
    u.add_argument("shape")
    u.add_argument("mindllm")
    u.add_argument("torch")
    u.set_defaults(fn=summary)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
