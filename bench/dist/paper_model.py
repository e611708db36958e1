"""The scale-on-paper model of docs/distributed.md: bytes per step, all-reduce time and expected
data-parallel efficiency of the mindllm-1.3b and mindllm-3b shapes on 8-1024 GPUs. Arithmetic
only (no GPU); every assumption is a named constant below. Prints markdown tables.

    python3 bench/dist/paper_model.py
"""
import json
import math
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# Per-GPU compute: the CUDA trainer's targets on one H100/H200 (docs/cuda-speed.md, "Floors"):
# tokens/s for one micro-batch of B x T tokens.
SHAPES = {"mindllm-1.3b": dict(tokens_per_s=61_243, micro=8 * 2048),
          "mindllm-3b": dict(tokens_per_s=30_288, micro=4 * 2048)}
# Interconnects: per-direction bandwidth a ring all-reduce sees (NCCL's "bus bandwidth") and the
# latency of one step. 85% of line rate is assumed achieved.
EFF = 0.85
NETS = {
    "NVLink (1 node, 8 GPUs, 450 GB/s/dir)": dict(busbw=450e9 * EFF, alpha=3e-6, max_gpus=8),
    "IB 8x400 Gb/s per node (rail-aligned)": dict(busbw=8 * 50e9 * EFF, alpha=6e-6, max_gpus=1 << 20),
    "IB 1x400 Gb/s per node": dict(busbw=50e9 * EFF, alpha=6e-6, max_gpus=1 << 20),
}
GRAD_BYTES = 4  # fp32 gradients in the flat buffer (the CUDA trainer's)
PARAM_BYTES_ZERO = 2  # ZeRO-1 all-gathers the bf16 working copy
BUCKET_BYTES = 256 << 20  # per collective at scale (the default 16 MiB suits one node)
BACKWARD_SHARE = 2 / 3  # of a step's compute: the part the reduction can overlap


def params(cfg):
    h, V, L = cfg["hidden_size"], cfg["vocab_size"], cfg.get("num_hidden_layers", cfg.get("num_layers"))
    f = cfg["intermediate_size"]
    if cfg["model_type"] == "llama":
        kv = cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * h // cfg["num_attention_heads"]
        layer = h * (h + 2 * kv) + h * h + 3 * h * f + 2 * h
        emb = V * h * (1 if cfg.get("tie_word_embeddings") else 2)
    else:  # gpt_neo: biases on the attention output and MLP; learned positions
        layer = 4 * h * h + h + 2 * h * f + f + h + 4 * h
        emb = V * h + cfg["max_position_embeddings"] * h
    return L * layer + emb + 2 * h


def allreduce_s(nbytes, n, net, algo):
    """Bandwidth term 2(n-1)/n S / busbw, plus per-bucket latency: ring 2(n-1) alpha, tree 2 log2(n) alpha."""
    buckets = math.ceil(nbytes / BUCKET_BYTES)
    hops = 2 * (n - 1) if algo == "ring" else 2 * math.ceil(math.log2(n))
    return 2 * (n - 1) / n * nbytes / net["busbw"] + buckets * hops * net["alpha"]


def main():
    for name, s in SHAPES.items():
        P = params(json.loads((CONFIGS / f"{name}.json").read_text()))
        step = s["micro"] / s["tokens_per_s"]  # compute of one micro-batch (grad-accum 1)
        grad = P * GRAD_BYTES
        print(f"\n### {name}: {P / 1e9:.2f} B parameters, {grad / 1e9:.2f} GB of fp32 gradients per step, "
              f"compute {step * 1e3:.0f} ms per {s['micro']}-token micro-batch per GPU\n")
        print("| GPUs | network | global batch (tokens, A=1) | all-reduce ring / tree (ms) | efficiency: no overlap | "
              "overlapped | ZeRO-1 (RS fp32 + AG bf16), overlapped | AdamW state per GPU, ZeRO-1 |")
        print("|---|---|---|---|---|---|---|---|")
        for n in (8, 64, 256, 1024):
            for net_name, net in NETS.items():
                if n > net["max_gpus"] or (n == 8 and "1x400" in net_name):
                    continue
                ring, tree = allreduce_s(grad, n, net, "ring"), allreduce_s(grad, n, net, "tree")
                t = min(ring, tree)
                # ZeRO-1: reduce-scatter of the fp32 gradients (half an all-reduce) overlaps the
                # backward; the all-gather of the bf16 weights follows the update, exposed.
                rs = t / 2
                ag = allreduce_s(P * PARAM_BYTES_ZERO, n, net, "ring" if ring < tree else "tree") / 2
                no_overlap = step / (step + t)
                overlap = step / (step + max(0.0, t - BACKWARD_SHARE * step))
                zero = step / (step + max(0.0, rs - BACKWARD_SHARE * step) + ag)
                print(f"| {n} | {net_name} | {n * s['micro'] / 1e6:.1f} M | {ring * 1e3:.0f} / {tree * 1e3:.0f} | "
                      f"{no_overlap:.0%} | {overlap:.0%} | {zero:.0%} | {8 * P / n / 1e9:.2f} GB |")


if __name__ == "__main__":
    main()
