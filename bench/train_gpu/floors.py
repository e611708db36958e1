#!/usr/bin/env python3
"""Per-op floors of one bf16 training step of `mindllm train --device cuda` (issue 8).

For each op of CudaModel's step (src/model/cuda/cuda_model.cpp: forward, backward, grad norm,
AdamW) this counts its FLOPs and the bytes it must move at least (each operand read once, each
result written once), and its floor = max(FLOPs / matmul peak, bytes / memory bandwidth). The sum
is the fastest a step could run with every kernel at its floor, so it bounds tokens/s and MFU;
a profile's kernel times against these floors show where the gaps are (docs/cuda-speed.md).

Defaults are the ceilings GPU.md measured on an H200: bf16 matmul 780 TFLOP/s, device copy
4.27 TB/s; --peak-tflops / --bandwidth-tbs for another card (H100 SXM: ~3.35 TB/s HBM3).
MFU uses GPU.md's formula over 989 TFLOP/s (bench_tools.PEAK_TFLOPS), as torch_train.py does.

    python3 bench/train_gpu/floors.py --shape llama-1.3b [--batch 8] [--recompute]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import PEAK_TFLOPS, SHAPES, dims, flops_per_token, param_counts  # noqa: E402

A, F32 = 2, 4  # bytes of a bf16 activation / weight copy, of an fp32 value


def step_ops(cfg, B, T, recompute):
    """[(op, count, flops, bytes)] for one optimizer step over B x T tokens (no grad accumulation)."""
    L, C, Hq, Hkv, F, V, _ = dims(cfg)
    gpt2 = cfg["model_type"] == "gpt2"
    D = C // Hq
    Q, KV = Hq * D, Hkv * D
    QKV = Q + 2 * KV
    N = B * T
    up = F if gpt2 else 2 * F  # width of the first MLP projection (gate|up fused for SwiGLU)
    ops = []

    def gemm(name, M, K, Nn, count=L):
        # forward: out[M,Nn] = x[M,K] . W[K,Nn]; backward: dX (beta = 1 onto dX) and dW (fp32, beta = 1)
        ops.append((f"{name} fwd", count, 2 * M * K * Nn, A * (M * K + K * Nn + M * Nn)))
        ops.append((f"{name} dX", count, 2 * M * K * Nn, A * (M * Nn + K * Nn + 2 * M * K)))
        ops.append((f"{name} dW", count, 2 * M * K * Nn, A * (M * Nn + M * K) + F32 * 2 * K * Nn))

    def elementwise(name, fwd_bytes, bwd_bytes, count=L):
        ops.append((f"{name} fwd", count, 0, fwd_bytes))
        ops.append((f"{name} bwd", count, 0, bwd_bytes))

    norm = "layernorm" if gpt2 else "rmsnorm"
    # per layer: norm reads x, writes y (+ fp32 stats); backward reads x, dy, writes dx (+ weight partials)
    elementwise(f"{norm} x2", 2 * (2 * A * N * C + 2 * F32 * N), 2 * (3 * A * N * C + 2 * F32 * N))
    gemm("qkv", N, C, QKV)
    if not gpt2:
        elementwise("rope q,k", 2 * A * N * (Q + KV), 2 * A * N * (Q + KV))
    # causal flash attention: QK^T and PV over half the T x T scores; backward: 5 such products
    attn_flops = 2 * B * Hq * T * T * D
    ops.append(("attention fwd", L, attn_flops, A * N * (2 * Q + 2 * KV) + F32 * B * Hq * T))
    ops.append(("attention bwd", L, 2.5 * attn_flops, A * N * (4 * Q + 4 * KV) + 2 * F32 * B * Hq * T))
    gemm("out proj", N, Q, C)
    elementwise("residual add x2", 2 * 3 * A * N * C, 2 * 2 * A * N * C)
    gemm("mlp up" if gpt2 else "gate|up", N, C, up)
    act = "gelu" if gpt2 else "swiglu"
    elementwise(act, A * N * (up + F), A * N * (up + 2 * F))
    if recompute:  # the backward recomputes the up projection and the activation
        ops.append(("recompute up", L, 2 * N * C * up, A * (N * C + C * up + N * up)))
        ops.append(("recompute act", L, 0, A * N * (up + F)))
    gemm("mlp down", N, F, C)
    # head: final norm, logits GEMM, cross-entropy (fwd reads the logits; bwd writes dlogits in place)
    elementwise(f"final {norm}", 2 * A * N * C, 3 * A * N * C, count=1)
    gemm("lm head", N, C, V, count=1)
    ops.append(("cross-entropy fwd", 1, 0, A * N * V))
    ops.append(("cross-entropy bwd", 1, 0, 2 * A * N * V))
    pos = N * C if gpt2 else 0
    ops.append(("embedding fwd", 1, 0, A * N * C + F32 * (N * C + pos)))
    ops.append(("embedding bwd", 1, 0, A * N * C + 2 * F32 * (N * C + pos)))
    # the optimizer over every parameter (fp32 master, grads, two moments; AdamW writes the bf16 copy)
    P = param_counts(cfg)[0]
    ops.append(("zero grads", 1, 0, F32 * P))
    ops.append(("grad norm", 1, 0, F32 * P))
    ops.append(("adamw (+ bf16 copy)", 1, 0, (4 * F32 + 3 * F32 + A) * P))
    return ops, N


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama-1.3b")
    p.add_argument("--batch", type=int, help="micro-batch (default: the shape's)")
    p.add_argument("--recompute", action="store_true", help="count the MLP recomputation (train --recompute)")
    p.add_argument("--peak-tflops", type=float, default=780.0, help="bf16 matmul ceiling (GPU.md, H200)")
    p.add_argument("--bandwidth-tbs", type=float, default=4.27, help="memory bandwidth (GPU.md, H200)")
    a = p.parse_args()
    cfg, batch, seq = SHAPES[a.shape]
    B = a.batch or batch
    ops, N = step_ops(cfg, B, seq, a.recompute)
    peak, bw = a.peak_tflops * 1e12, a.bandwidth_tbs * 1e12
    rows, total = [], 0.0
    for name, count, flops, nbytes in ops:
        t = count * max(flops / peak, nbytes / bw)
        bound = "compute" if flops / peak >= nbytes / bw else "memory"
        rows.append((name, count, count * flops, count * nbytes, t, bound))
        total += t
    print(f"{a.shape}, micro-batch {B} x {seq} = {N} tokens per step; floors at {a.peak_tflops:g} TFLOP/s, "
          f"{a.bandwidth_tbs:g} TB/s")
    print(f"{'op':26s} {'calls':>5s} {'GFLOP':>9s} {'GB':>8s} {'floor ms':>9s} {'share':>6s}  bound")
    for name, count, flops, nbytes, t, bound in sorted(rows, key=lambda r: -r[4]):
        print(f"{name:26s} {count:5d} {flops / 1e9:9.1f} {nbytes / 1e9:8.2f} {t * 1e3:9.2f} {t / total:6.1%}  {bound}")
    tps = N / total
    mfu = flops_per_token(cfg, seq) * tps / (PEAK_TFLOPS * 1e12)
    gemm_t = sum(r[4] for r in rows if r[5] == "compute")
    print(f"step floor {total * 1e3:.1f} ms ({gemm_t / total:.0%} of it compute-bound ops): "
          f"at most {tps:,.0f} tokens/s, MFU {mfu:.1%} (GPU.md's formula)")


if __name__ == "__main__":
    main()
