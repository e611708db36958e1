#!/usr/bin/env python3
"""LoRA speed on the CPU: `mindllm sft --lora-rank` against full `mindllm sft` and against a plain
PyTorch + PEFT loop (the peer), on the model and data of bench_sft_trl.py (a random LLaMA, hidden
256, 4 layers, 6,000-token BPE, ~6.2M parameters; the Alpaca demo sets of ../shared/data/sft as
ChatML `messages`).

  - mindllm full: `mindllm sft` (every weight trains), fp32, batch B, seq S, T threads.
  - mindllm LoRA: the same with `--lora-rank R --lora-alpha 2R --lora-targets q,k,v,o,gate,up,down`.
  - PEFT LoRA: the same samples (`mindllm sft --dump-samples`: the same tokens and loss masks), B
    per step in mindllm's order, each batch padded to its longest sample as mindllm pads; the same
    LoRA config through peft.get_peft_model, torch.optim.AdamW over the adapters, clip 1.0,
    torch.set_num_threads(T), eager attention off (sdpa), fp32.

Each side runs --warmup untimed then --steps timed steps; rates are summed input tokens (B x padded
length) over summed step times (mindllm: metrics.jsonl step_time_s; PyTorch: each step timed).
--rounds R alternates the sides and reports medians. The data order of mindllm and the PyTorch loop
differ (mindllm shuffles with --seed; the loop takes the dump in file order): compare per-token rates.

  python3 bench/sft/bench_lora.py --threads 2 --steps 20 --warmup 3 --rounds 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sft_trl import REPO, prepare, rates, run_mindllm  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first, per side")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--vocab", type=int, default=6000)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data", "sft"))
    p.add_argument("--mindllm", default=os.environ.get("MINDLLM_BIN", os.path.join(REPO, "build", "mindllm")))
    p.add_argument("--work", help="work directory (default: a temporary one)")
    p.add_argument("--skip-peft", action="store_true")
    return p.parse_args()


def lora_flags(a):
    return ["--lora-rank", str(a.rank), "--lora-alpha", str(2 * a.rank), "--lora-targets", "q,k,v,o,gate,up,down"]


def run_peft(a, model_dir, samples):
    import peft
    import torch
    from transformers import LlamaForCausalLM

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    cfg = peft.LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = peft.get_peft_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    times, inputs, trained = [], [], []
    for step in range(a.warmup + a.steps):
        rows = [samples[(step * a.batch + r) % len(samples)] for r in range(a.batch)]
        T = max(len(s["ids"]) for s in rows) - 1
        ids = torch.zeros(a.batch, T, dtype=torch.long)
        labels = torch.full((a.batch, T), -100)
        for r, s in enumerate(rows):
            x, t = s["ids"], s["trained"]
            ids[r, :len(x) - 1] = torch.tensor(x[:-1])
            labels[r, :len(x) - 1] = torch.tensor([tok if k else -100 for tok, k in zip(x[1:], t[1:])])
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        inputs.append(a.batch * T)
        trained.append(int((labels != -100).sum()))
    res = rates(times, inputs, trained, a.warmup)
    res["load_average_1min"] = os.getloadavg()[0]
    return res


def main():
    a = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    setup = prepare(a, "bench_lora.py")
    if not setup:
        return 0
    tmp, work, _, data, model, params, vocab = setup
    dump = os.path.join(work, "samples.jsonl")
    subprocess.run([a.mindllm, "sft", "--model", model, "--data", data, "--seq", str(a.seq), "--dry-run",
                    "--dry-run-samples", "0", "--dump-samples", dump], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(dump) as f:
        samples = [json.loads(line) for line in f]
    print(f"model: LLaMA hidden 256, 4 layers, vocab {vocab}, {params:,} parameters; {len(samples)} samples; "
          f"batch {a.batch}, seq {a.seq}, LoRA r {a.rank} on q,k,v,o,gate,up,down; {a.warmup} warmup + {a.steps} "
          f"timed steps, {a.threads} threads", file=sys.stderr)
    runs = {"mindllm_full": [], "mindllm_lora": [], "peft_lora": []}
    for r in range(a.rounds):
        runs["mindllm_full"].append(run_mindllm(a, model, data, work, []))
        runs["mindllm_lora"].append(run_mindllm(a, model, data, work, lora_flags(a)))
        if not a.skip_peft:
            runs["peft_lora"].append(run_peft(a, model, samples))
        print(f"round {r + 1}: " + json.dumps({k: round(v[-1]["input_tokens_per_s"], 1) for k, v in runs.items() if v}),
              file=sys.stderr)
    med = {k: statistics.median(x["input_tokens_per_s"] for x in v) for k, v in runs.items() if v}
    print("input tokens/s: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
    print(f"mindllm LoRA / mindllm full: {med['mindllm_lora'] / med['mindllm_full']:.2f}")
    if "peft_lora" in med:
        print(f"mindllm LoRA / PyTorch+PEFT LoRA: {med['mindllm_lora'] / med['peft_lora']:.2f}")
    print(f"load average {os.getloadavg()}")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
