#!/usr/bin/env python3
"""SFT speed on the CPU: `mindllm sft` against TRL's SFTTrainer (issue 17, "Checks").

Both sides fine-tune the same model directory on the same instruction data with the same chat
template, batch, sequence limit, steps, learning rate and thread count, one after the other, and
the script prints the trained tokens/s and input tokens/s of each and the ratio mindllm / TRL.

What is built (in --work, a temporary directory by default):
  - data.jsonl: /work/shared/data/sft/alpaca_{en,zh}_demo.json (1,999 Alpaca samples; the shared
    data of the repo, ../shared/data/sft relative to the repo root) converted to OpenAI `messages`
    JSON lines, user = instruction + "\\n" + input (as mindllm's alpaca reader does), assistant =
    output. Both sides read this one file. Absent data: the script says so and exits 0.
  - model/: a byte-level BPE tokenizer (HF `tokenizers`, --vocab tokens, trained on the texts of
    the data, special tokens <|endoftext|> <|im_start|> <|im_end|>) and a random small LLaMA
    (hidden 256, 4 layers, 4 heads of 64, SwiGLU 688, untied head, fp32) written by transformers'
    save_pretrained (safetensors), with a tokenizer_config.json holding a ChatML chat template
    whose assistant turns are wrapped in {% generation %} markers.

What is compared (default: no packing on either side; --packing: packing on both):
  - mindllm: `mindllm sft --batch B --seq S --threads T --lr LR --schedule constant` (fp32, loss on
    the assistant turns: answer + <|im_end|> + newline; each micro-batch padded to its longest sample).
    --packing: `--packing`, B windows of S positions per micro-batch, samples placed first-fit in
    data order, block-diagonal attention in mindllm's attention kernels (no mask tensor).
  - TRL with --packing: SFTConfig(packing=True), i.e. TRL's default packing_strategy "bfd" (best-fit
    decreasing over the dataset, done once before training), which forces padding_free=True: the
    collator concatenates the B packed windows of a batch into ONE row of up to B x S tokens with
    position_ids restarting per sample and no attention_mask. Without FlashAttention (none on a
    CPU) transformers' sdpa path derives a block-diagonal mask from position_ids
    (masking_utils.find_packed_sequence_indices) and runs dense masked attention over the whole row,
    (B S)^2 scores per head: this is what TRL does on a CPU. Each TRL sample takes n positions (its
    first-token label masked), a mindllm sample n - 1 (inputs ids[:-1], targets ids[1:]).
  - --pretrain (with --packing): also `mindllm train` on the same model, batch, seq and threads over
    a token shard made of the same samples' ids (the packing cost over pre-training at one shape;
    input tokens/s of both, and sft's non-padding tokens/s = input rate x fill).
  - TRL: SFTTrainer(packing=False, padding_free=False, max_length=S, assistant_only_loss=True) on
    the same messages: TRL's mask of the {% generation %} spans, i.e. the same tokens mindllm
    trains; its collator pads each batch to its longest sample (pad_to_multiple_of is None on the
    CPU). torch.set_num_threads(T), use_cpu=True, fp32 (bf16=False: SFTConfig's default is bf16=True,
    autocast, slower than fp32 on this CPU), lr_scheduler_type constant, no warmup,
    no weight decay, clip 1.0 (both), TRL's default optimizer (adamw_torch_fused), no eval, no
    saving, no reporting. TRL's default per-step extras (entropy and token accuracy in
    compute_loss) are kept: that is SFTTrainer as users run it.
  Differences left: the sample order (each side shuffles with its own seed, so the batches and
  their padded lengths differ: compare per-token rates, not step times), the truncation limit
  (mindllm keeps S + 1 tokens per sample, S inputs; TRL keeps S tokens, S - 1 predictions).

Measurement: both sides time every optimizer step (mindllm: metrics.jsonl `step_time_s`; TRL: a
callback, the time between consecutive on_step_end calls, so data collation is inside the step as
it is for mindllm); the first --warmup steps are skipped on both. Rates are summed tokens over
summed step times of the timed steps: input tokens = B x padded length (what mindllm's
`tokens_per_s` counts), trained tokens = the tokens with a loss (mindllm's `target_tokens`; TRL's
labels != -100 after the shift). --rounds R alternates the sides R times and reports each side's
median rate, their ratio, and the ratio of each round (use it when other work shares the cores).

Install: `pip install trl` (not in scripts/setup.sh: no test needs it); torch, transformers,
tokenizers and datasets as for the reference tests.

  python3 bench/sft/bench_sft_trl.py --threads 2 --steps 20 --warmup 3
  python3 bench/sft/bench_sft_trl.py --threads 2 --rounds 3 --json result.json
  python3 bench/sft/bench_sft_trl.py --threads 2 --packing --pretrain --rounds 2
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA_FILES = ["alpaca_en_demo.json", "alpaca_zh_demo.json"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML (mindllm's built-in `chatml`) with transformers' assistant-mask markers around what an
# assistant turn adds after the generation prompt (answer, <|im_end|>, newline): what mindllm trains.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' + '\\n' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first, per side")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--vocab", type=int, default=6000, help="BPE vocabulary size")
    p.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times; medians")
    p.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data", "sft"))
    p.add_argument("--mindllm", default=os.environ.get("MINDLLM_BIN", os.path.join(REPO, "build", "mindllm")))
    p.add_argument("--work", help="work directory (default: a temporary one, removed at the end)")
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--skip-mindllm", action="store_true")
    p.add_argument("--json", help="also write the result as JSON to this file")
    p.add_argument("--packing", action="store_true", help="pack on both sides (mindllm --packing, TRL packing=True)")
    p.add_argument("--pretrain", action="store_true", help="also time `mindllm train` at the same shape")
    return p.parse_args()


def load_messages(data_dir):
    rows = []
    for name in DATA_FILES:
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            for s in json.load(f):
                user = s["instruction"] + ("\n" + s["input"] if s.get("input") else "")
                rows.append({"messages": [{"role": "user", "content": user},
                                          {"role": "assistant", "content": s["output"]}]})
    return rows


def make_model_dir(rows, out, vocab):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [m["content"] for r in rows for m in r["messages"]]
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    hf_tok.save_pretrained(out)
    # The chat template inside tokenizer_config.json (transformers 5 would write chat_template.jinja).
    cfg_path = os.path.join(out, "tokenizer_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        tcfg = json.load(f)
    tcfg["chat_template"] = CHAT_TEMPLATE
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(tcfg, f, ensure_ascii=False, indent=2)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(hf_tok), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                         bos_token_id=None, eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    return sum(p.numel() for p in model.parameters()), len(hf_tok)


def rates(step_times, input_tokens, trained_tokens, warmup):
    """Rates over the steps after the first `warmup`: summed tokens over summed step times."""
    t = sum(step_times[warmup:])
    return {
        "input_tokens_per_s": sum(input_tokens[warmup:]) / t,
        "trained_tokens_per_s": sum(trained_tokens[warmup:]) / t,
        "mean_step_s": t / len(step_times[warmup:]),
        "mean_padded_len": sum(input_tokens[warmup:]) / len(input_tokens[warmup:]),
        "timed_steps": len(step_times[warmup:]),
    }


def run_mindllm(a, model, data, work, extra=()):
    """`mindllm sft` for a.warmup + a.steps steps (extra: more flags); its rates."""
    out = os.path.join(work, "mindllm-run")
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [a.mindllm, "sft", "--model", model, "--data", data, "--out", out,
           "--steps", str(a.warmup + a.steps), "--batch", str(a.batch), "--seq", str(a.seq),
           "--threads", str(a.threads), "--lr", str(a.lr), "--schedule", "constant", "--warmup", "0",
           "--precision", "fp32", "--log-every", str(a.warmup + a.steps), *extra] + (["--packing"] if getattr(a, "packing", False) else [])
    return time_mindllm(a, cmd, out)


def time_mindllm(a, cmd, out):
    print("$ " + " ".join(cmd), file=sys.stderr)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    p = subprocess.run(cmd, check=True, env=env, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(p.stderr)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    times = [r["step_time_s"] for r in rows]
    inputs = [r["tokens_per_s"] * r["step_time_s"] for r in rows]
    trained = [r.get("target_tokens", i) for r, i in zip(rows, inputs)]
    res = rates(times, inputs, trained, a.warmup)
    res["last_loss"] = rows[-1]["loss"]
    res["load_average_1min"] = os.getloadavg()[0]
    fill = re.search(r"\(([\d.]+)% of positions used\)", p.stderr)
    if fill:  # packed: the share of real (non-padding) positions in a window
        res["fill"] = float(fill.group(1)) / 100
        res["real_tokens_per_s"] = res["input_tokens_per_s"] * res["fill"]
    return res


def run_pretrain(a, model, data, work):
    """`mindllm train` at the same shape over a shard of the same samples' token ids."""
    import numpy as np
    dump, shards, out = (os.path.join(work, n) for n in ("samples.jsonl", "shards", "mindllm-train"))
    if not os.path.exists(os.path.join(shards, "train-000.bin")):
        subprocess.run([a.mindllm, "sft", "--model", model, "--data", data, "--seq", str(a.seq), "--dry-run",
                        "--dry-run-samples", "0", "--dump-samples", dump], check=True, capture_output=True)
        with open(dump) as f:
            ids = np.concatenate([json.loads(line)["ids"] for line in f]).astype(np.uint16)
        os.makedirs(shards, exist_ok=True)
        for name, toks in (("train-000.bin", ids), ("val-000.bin", ids[: 64 * (a.seq + 1)])):
            header = np.zeros(256, dtype=np.int32)
            header[0], header[1], header[2] = 20240520, 1, len(toks)
            with open(os.path.join(shards, name), "wb") as f:
                f.write(header.tobytes() + toks.tobytes())
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [a.mindllm, "train", "--model", model, "--data", shards, "--out", out, "--steps", str(a.warmup + a.steps),
           "--batch", str(a.batch), "--seq", str(a.seq), "--threads", str(a.threads), "--lr", str(a.lr),
           "--schedule", "constant", "--warmup", "0", "--precision", "fp32", "--log-every", str(a.warmup + a.steps),
           "--ignore-tokenizer-mismatch"]
    return time_mindllm(a, cmd, out)


def run_trl(a, model_dir, rows, work):
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    cfg = SFTConfig(
        output_dir=os.path.join(work, "trl-run"), max_steps=a.warmup + a.steps, per_device_train_batch_size=a.batch,
        gradient_accumulation_steps=1, learning_rate=a.lr, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, max_grad_norm=1.0, max_length=a.seq, packing=a.packing, padding_free=a.packing,
        assistant_only_loss=True, use_cpu=True, bf16=False, fp16=False, eval_strategy="no", save_strategy="no",
        report_to="none", logging_steps=a.warmup + a.steps, disable_tqdm=True, dataloader_num_workers=0, seed=0)

    batches = []  # (padded inputs, trained tokens) of each collated batch, in order

    class Recorded:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, examples):
            b = self.inner(examples)
            batches.append((b["input_ids"].numel(), int((b["labels"][:, 1:] != -100).sum())))
            return b

    ends = []

    class StepTimes(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())

    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         callbacks=[StepTimes()])
    trainer.data_collator = Recorded(trainer.data_collator)
    t0 = time.perf_counter()
    out = trainer.train()
    wall = time.perf_counter() - t0
    n = a.warmup + a.steps
    # The first interval also holds the start of the epoch (sampler, dataloader): a warmup step.
    times = [ends[i + 1] - ends[i] for i in range(n)]
    res = rates(times, [b[0] for b in batches[:n]], [b[1] for b in batches[:n]], a.warmup)
    res["train_wall_s"] = wall
    res["last_loss"] = out.training_loss
    res["load_average_1min"] = os.getloadavg()[0]
    return res


def prepare(a, script):
    """The work directory with data.jsonl and model/ (None when the data is absent):
    (TemporaryDirectory or None, work, rows, data path, model dir, parameters, vocab)."""
    if not all(os.path.exists(os.path.join(a.data_dir, f)) for f in DATA_FILES):
        print(f"{script}: {' or '.join(DATA_FILES)} absent from {a.data_dir}: skipped", file=sys.stderr)
        return None
    tmp = None if a.work else tempfile.TemporaryDirectory(prefix="mindllm-bench-sft-")
    work = a.work or tmp.name
    os.makedirs(work, exist_ok=True)
    rows = load_messages(a.data_dir)
    data = os.path.join(work, "data.jsonl")
    with open(data, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    model = os.path.join(work, "model")
    params, vocab = make_model_dir(rows, model, a.vocab)
    return tmp, work, rows, data, model, params, vocab


def main():
    a = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    if not a.skip_mindllm and not os.access(a.mindllm, os.X_OK):
        sys.exit(f"bench_sft_trl.py: no mindllm binary at {a.mindllm} (build it, or pass --mindllm / MINDLLM_BIN)")
    setup = prepare(a, "bench_sft_trl.py")
    if not setup:
        return 0
    tmp, work, rows, data, model, params, vocab = setup
    print(f"model: LLaMA hidden 256, 4 layers, vocab {vocab}, {params:,} parameters; data: {len(rows)} "
          f"conversations; batch {a.batch}, seq {a.seq}, {a.warmup} warmup + {a.steps} timed steps, "
          f"{a.threads} threads", file=sys.stderr)

    runs = {"mindllm": [], "trl": [], "pretrain": []}
    for r in range(a.rounds):
        if a.pretrain:
            runs["pretrain"].append(run_pretrain(a, model, data, work))
            print(f"round {r + 1} mindllm train: {json.dumps(runs['pretrain'][-1])}", file=sys.stderr)
        if not a.skip_mindllm:
            runs["mindllm"].append(run_mindllm(a, model, data, work))
            print(f"round {r + 1} mindllm: {json.dumps(runs['mindllm'][-1])}", file=sys.stderr)
        if not a.skip_trl:
            runs["trl"].append(run_trl(a, model, rows, work))
            print(f"round {r + 1} trl: {json.dumps(runs['trl'][-1])}", file=sys.stderr)

    def med(side, key):
        return statistics.median(x[key] for x in runs[side]) if runs[side] else None

    result = {"threads": a.threads, "batch": a.batch, "seq": a.seq, "steps": a.steps, "warmup": a.warmup,
              "rounds": a.rounds, "packing": a.packing, "params": params, "vocab": vocab, "load_average": os.getloadavg(), "runs": runs}
    for key in ("trained_tokens_per_s", "input_tokens_per_s"):
        m, t = med("mindllm", key), med("trl", key)
        per_round = [x[key] / y[key] for x, y in zip(runs["mindllm"], runs["trl"])]
        result[key] = {"mindllm": m, "trl": t, "ratio": m / t if m and t else None, "round_ratios": per_round}
        print(f"{key}: mindllm {m and round(m, 1)}  TRL {t and round(t, 1)}  ratio "
              f"{result[key]['ratio'] and round(result[key]['ratio'], 3)} (per round: "
              f"{', '.join('%.2f' % x for x in per_round)})")
    if runs["pretrain"] and runs["mindllm"]:
        pre, sft_in = med("pretrain", "input_tokens_per_s"), med("mindllm", "input_tokens_per_s")
        sft_real = med("mindllm", "real_tokens_per_s") if "real_tokens_per_s" in runs["mindllm"][0] else None
        result["vs_pretrain"] = {"train_tokens_per_s": pre, "sft_input_tokens_per_s": sft_in,
                                 "sft_real_tokens_per_s": sft_real, "input_cost": 1 - sft_in / pre,
                                 "real_cost": 1 - sft_real / pre if sft_real else None}
        print(f"mindllm train {pre:.1f} tok/s; sft input {sft_in:.1f} tok/s (cost {100 * (1 - sft_in / pre):.1f}%)"
              + (f", non-padding {sft_real:.1f} tok/s (cost {100 * (1 - sft_real / pre):.1f}%)" if sft_real else ""))
    print(f"load average {result['load_average']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
