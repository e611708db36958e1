#!/usr/bin/env bash
# The CUDA backend without a GPU: builds it for the CPU emulator of tests/cuda/emu (README there),
# runs every GPU test (tests/cuda) on it twice — two thread schedules, two poison bytes, since a
# missing barrier shows under one or the other — and then scripts/gpu-check.sh's training checks
# (`mindllm train --device cuda`, GPU resume, GPU -> CPU -> GPU resume, fp32 GPU vs CPU) on a
# shorter run, `train`/`sft --device cuda` against the CPU on every family, and `eval` / `select
# score --device cuda` against the CPU, `generate` / `serve --device cuda` (the inference engine,
# scripts/infer-check.sh) against the CPU. Part of scripts/test.sh. No substitute for a GPU run: see
# the README.
#   EMU_ASAN=1 bash scripts/cuda-emu-check.sh   # the same under AddressSanitizer (build-emu-asan,
#                                               # ~10 min more to build): kernels' out-of-bounds accesses
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EMU_ASAN:-0}" = 1 ]; then
  BUILD=${EMU_BUILD_DIR:-build-emu-asan}
  # Release, as scripts/gpu-check.sh configures it again (its training checks run here too)
  flags=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=-fsanitize=address -fno-omit-frame-pointer -g"
         -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
else
  BUILD=${EMU_BUILD_DIR:-build-emu}
  flags=(-DCMAKE_BUILD_TYPE=Release)
fi
# Configured every time (seconds): the flags must be these even in a build directory made before.
cmake -S . -B "$BUILD" -G Ninja "${flags[@]}" -DMINDLLM_CUDA_EMU=ON >/dev/null
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target mindllm mindllm_cuda_tests
status=0
for run in "lockstep ff" "reverse 7f"; do
  read -r schedule poison <<<"$run"
  echo "== GPU tests on the CPU emulator: schedule $schedule, poison 0x$poison"
  MINDLLM_EMU_SCHEDULE=$schedule MINDLLM_EMU_POISON=$poison OMP_NUM_THREADS=1 \
    ctest --test-dir "$BUILD" -L cuda -j "${JOBS:-$(nproc)}" --timeout 900 --output-on-failure || status=1
done
echo "== scripts/gpu-check.sh's training checks on the CPU emulator"
BUILD_DIR=$BUILD TRAIN_STEPS=8 TRAIN_BATCH=2 TRAIN_SEQ=32 GTEST_FILTER=-* BUDGET=900 OMP_NUM_THREADS=2 \
  bash scripts/gpu-check.sh || status=1

# no_gpu LABEL ARGS...: `mindllm ARGS` on an emulator reporting no GPU says so in one line, exit 2.
no_gpu() {
  local label=$1 msg rc
  shift
  msg=$(MINDLLM_EMU_NO_GPU=1 "$BUILD/mindllm" "$@" 2>&1) && rc=0 || rc=$?
  if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] && [[ "$msg" == *"--device cuda: no usable GPU"* ]]; then
    printf '%-16s ok    %s\n' "$label" "$msg"
  else
    printf '%-16s FAIL  exit %s: %s\n' "$label" "$rc" "$msg"
    status=1
  fi
}

# same_losses LABEL CPU_METRICS GPU_METRICS: 3 logged losses each, equal to 1e-5 relative.
same_losses() {
  python3 - "$2" "$3" "$1" <<'PY'
import json, sys
def losses(p):
    try:
        return [json.loads(l)["loss"] for l in open(p) if l.strip()]
    except OSError:
        return []
cpu, gpu = losses(sys.argv[1]), losses(sys.argv[2])
ok = len(cpu) == len(gpu) == 3 and all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(cpu, gpu))
print(f"{sys.argv[3]:<11} {'ok' if ok else 'FAIL':<5} cpu {cpu} | cuda {gpu}")
sys.exit(0 if ok else 1)
PY
}

# The other two families through the CLI, with gradient accumulation and --recompute: 3 steps
# in fp32 on the emulated GPU must log the CPU's losses (to 1e-5), on gpu-check.sh's data.
echo "== train --device cuda, fp32, every family: losses against the CPU"
W=/tmp/mindllm-train-check
for model in tiny-gpt2 tiny-neo tiny-llama; do
  for dev in cpu cuda; do
    rm -rf "$W/fam-$model-$dev"
    extra=()
    [ "$dev" = cuda ] && extra=(--recompute)
    "$BUILD/mindllm" train --model "$model" --data "$W/data" --out "$W/fam-$model-$dev" --batch 2 --seq 32 \
      --grad-accum 2 --steps 3 --lr 3e-3 --warmup 1 --schedule constant --eval-batches 1 --threads 1 \
      --device "$dev" --precision fp32 "${extra[@]}" >"$W/fam-$model-$dev.log" 2>&1 ||
      { echo "$model on $dev failed: $(tail -1 "$W/fam-$model-$dev.log")"; status=1; }
  done
  same_losses "$model" "$W/fam-$model-cpu/metrics.jsonl" "$W/fam-$model-cuda/metrics.jsonl" || status=1
done

# Instruction tuning on the emulated GPU: variable-length padded batches with loss masks and
# NEFTune noise, 3 steps in fp32 must log the CPU's losses (to 1e-5).
echo "== sft --device cuda, fp32, with --neftune-alpha: losses against the CPU"
for i in $(seq 1 40); do printf 'Question %d: what is %d plus %d? Answer: %d.\n' "$i" "$i" "$i" $((2 * i)); done >"$W/sft-text.txt"
for i in $(seq 1 12); do
  printf '{"messages": [{"role": "user", "content": "What is %d plus %d?"}, {"role": "assistant", "content": "%d."}]}\n' "$i" "$i" $((2 * i))
done >"$W/sft.jsonl"
"$BUILD/mindllm" tokenizer train --input "$W/sft-text.txt" --vocab-size 300 --special '<|endoftext|>' \
  --special '<|im_start|>' --special '<|im_end|>' --output "$W/sft-tok.json" --quiet || status=1
for dev in cpu cuda; do
  rm -rf "$W/sft-$dev"
  "$BUILD/mindllm" sft --model "$W/fam-tiny-llama-cpu/ckpt/step-0000003" --tokenizer "$W/sft-tok.json" \
    --data "$W/sft.jsonl" --chat-template chatml --out "$W/sft-$dev" --batch 3 --seq 48 --grad-accum 2 --steps 3 \
    --lr 3e-3 --neftune-alpha 5 --threads 1 --device "$dev" --precision fp32 >"$W/sft-$dev.log" 2>&1 ||
    { echo "sft on $dev failed: $(tail -1 "$W/sft-$dev.log")"; status=1; }
done
same_losses sft "$W/sft-cpu/metrics.jsonl" "$W/sft-cuda/metrics.jsonl" || status=1

# The inference engine on the emulated GPU (issue 16; scripts/infer-check.sh): generate --device
# cuda gives the CPU's greedy tokens on every family, serve --device cuda generate's text; without
# a GPU, generate --device cuda is one line and exit 2.
echo "== generate / serve --device cuda: greedy tokens against the CPU"
bash scripts/infer-check.sh "$BUILD" "$W/sft-tok.json" "$W/fam-tiny-llama-cpu/ckpt/step-0000003" \
  "$W/fam-tiny-gpt2-cpu/ckpt/step-0000003" "$W/fam-tiny-neo-cpu/ckpt/step-0000003" || status=1
no_gpu gen-no-gpu generate --model "$W/fam-tiny-llama-cpu/ckpt/step-0000003" --prompt-ids "1 2 3" --device cuda

# Packed samples on the emulated GPU (position ids through RoPE and the learned position
# embeddings, block-diagonal attention): gpt2 and llama, 3 steps in fp32 = the CPU's losses.
echo "== sft --packing --device cuda, fp32: losses against the CPU"
for model in tiny-gpt2 tiny-llama; do
  for dev in cpu cuda; do
    rm -rf "$W/pack-$model-$dev"
    "$BUILD/mindllm" sft --model "$W/fam-$model-cpu/ckpt/step-0000003" --tokenizer "$W/sft-tok.json" \
      --data "$W/sft.jsonl" --chat-template chatml --out "$W/pack-$model-$dev" --batch 2 --seq 32 --grad-accum 2 \
      --steps 3 --lr 3e-3 --packing --threads 1 --device "$dev" --precision fp32 >"$W/pack-$model-$dev.log" 2>&1 ||
      { echo "sft --packing ($model) on $dev failed: $(tail -1 "$W/pack-$model-$dev.log")"; status=1; }
  done
  same_losses "pack-$model" "$W/pack-$model-cpu/metrics.jsonl" "$W/pack-$model-cuda/metrics.jsonl" || status=1
done

# Evaluation on the emulated GPU (eval/cuda_forward.h, no KV cache on the device): multiple-choice
# tasks (mmlu with 5 shots, arc_easy with answers of several tokens), a generation task (gsm8k: greedy with stop strings) and perplexity (rolling
# windows) through `eval --device cuda` give the CPU's results.json and per-sample log on two
# families: log-likelihoods within 1e-4 relative, the same choices, the same generated text. Then
# bf16 on the GPU (runs; log-likelihoods within 5e-2), `select score --device cuda` (the same GPU
# forward) = the CPU's scores, and `--device cuda` without a GPU: one line, exit 2.
echo "== eval --device cuda, fp32: results and samples against the CPU"
E=$W/eval
rm -rf "$E" && mkdir -p "$E"
python3 - "$E/data" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
for sub in ("mmlu/test", "mmlu/dev", "arc", "gsm8k", "text"):
    (d / sub).mkdir(parents=True)
# the built-in tasks' default shots: 5 (mmlu from dev, gsm8k drawn from train); contexts are cut to 64 tokens
rows = [f"What is {i} plus {i + 1}?,{2 * i},{2 * i + 1},{2 * i + 2},{i},B" for i in range(1, 9)]
(d / "mmlu/test/anatomy_test.csv").write_text("\n".join(rows[5:]) + "\n")
(d / "mmlu/dev/anatomy_dev.csv").write_text("\n".join(rows[:5]) + "\n")
# arc_easy: zero-shot, answer texts of different lengths (padded batches, multi-token continuations)
arc = [{"query": "Question: Which of these is a fruit?\nAnswer:", "choices": ["an apple", "a stone", "a red brick wall"],
        "gold": 0},
       {"query": "Question: What do plants need?\nAnswer:", "choices": ["light", "music and songs", "sand"], "gold": 0},
       {"query": "Question: Where do fish live?\nAnswer:", "choices": ["in water", "on mountains high up"], "gold": 0}]
(d / "arc/arc_easy.jsonl").write_text("".join(json.dumps(x) + "\n" for x in arc))
qa = [(f"Tom has {i} apples and buys {i + 2} more. How many apples does he have?", f"{i} + {i + 2} = {2 * i + 2}\n#### {2 * i + 2}")
      for i in range(1, 9)]
for name, items in (("train", qa[:5]), ("test", qa[5:])):
    (d / f"gsm8k/{name}.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in items))
(d / "text/a.txt").write_text("Question 7: what is 7 plus 7? Answer: 14. " * 6)
PY
# same_eval LABEL TOL CPU CUDA: results.json (.json) and --log-samples (.jsonl) agree, numbers to TOL relative.
same_eval() {
  python3 - "$@" <<'PY'
import json, math, sys
label, tol, a, b = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
bad = []
def same(x, y, where):
    if isinstance(x, dict) and isinstance(y, dict):
        if x.keys() != y.keys():
            bad.append(f"{where}: keys {sorted(x)} vs {sorted(y)}")
        for k in x.keys() & y.keys():
            same(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (u, v) in enumerate(zip(x, y)):
            same(u, v, f"{where}[{i}]")
    elif isinstance(x, float) and isinstance(y, float):
        if not (x == y or abs(x - y) <= tol * max(abs(x), abs(y), 1e-3)):
            bad.append(f"{where}: {x} vs {y}")
    elif x != y:
        bad.append(f"{where}: {x!r} vs {y!r}")
try:
    ra, rb = json.load(open(a + ".json")), json.load(open(b + ".json"))
    for k in ("results", "groups", "n-samples"):
        same(ra[k], rb[k], k)
    la, lb = [[json.loads(l) for l in open(p + ".jsonl")] for p in (a, b)]
    same(la, lb, "samples") if len(la) == len(lb) else bad.append(f"{len(la)} vs {len(lb)} samples")
    gen = [s for s in la if "resp" in s]
    ok = not bad and len(la) == 10 and len(gen) == 3 and rb["config"]["device"] == "cuda"
    if not ok and not bad:
        bad.append(f"{len(la)} samples, {len(gen)} generated, device {rb['config']['device']}")
except (OSError, ValueError, KeyError) as e:
    ok, bad = False, [repr(e)]
print(f"{label:<11} {'ok' if ok else 'FAIL':<5} {len(la) if ok else ''} samples" + "".join("\n  " + x for x in bad[:8]))
sys.exit(0 if ok else 1)
PY
}
eval_run() {  # model dir, device, out prefix, extra flags
  local model=$1 dev=$2 out=$3
  shift 3
  "$BUILD/mindllm" eval --model "$model" --tokenizer "$W/sft-tok.json" --tasks mmlu,arc_easy,gsm8k,perplexity \
    --data-dir "$E/data" --max-length 64 --max-gen-toks 6 --batch 2 --threads 1 --device "$dev" --out "$out.json" \
    --log-samples "$out.jsonl" --quiet "$@" >"$out.log" 2>&1 ||
    { echo "eval on $dev failed: $(tail -1 "$out.log")"; status=1; }
}
for model in tiny-gpt2 tiny-llama; do
  for dev in cpu cuda; do eval_run "$W/fam-$model-cpu/ckpt/step-0000003" "$dev" "$E/$model-$dev"; done
  same_eval "eval-$model" 1e-4 "$E/$model-cpu" "$E/$model-cuda" || status=1
done
echo "== eval --device cuda --precision bf16 (mixed precision), select score --device cuda, no GPU"
eval_run "$W/fam-tiny-llama-cpu/ckpt/step-0000003" cuda "$E/bf16" --precision bf16
python3 - "$E/tiny-llama-cpu.jsonl" "$E/bf16.jsonl" <<'PY' || status=1
import json, sys
a, b = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
ll = lambda s: [c[0] for c in s["scores"]] if "scores" in s else [s["loglikelihood"]] if "loglikelihood" in s else []
pairs = [(x, y) for s, t in zip(a, b) for x, y in zip(ll(s), ll(t))]
worst = max(abs(x - y) / abs(x) for x, y in pairs)
ok = len(a) == len(b) == 10 and len(pairs) == 21 and worst <= 5e-2
print(f"{'eval-bf16':<11} {'ok' if ok else 'FAIL':<5} log-likelihoods within {worst:.1e} of fp32 on the CPU")
sys.exit(0 if ok else 1)
PY
for dev in cpu cuda; do
  "$BUILD/mindllm" select score --model "$W/fam-tiny-llama-cpu/ckpt/step-0000003" --tokenizer "$W/sft-tok.json" \
    --data "$W/sft.jsonl" --chat-template chatml --batch 5 --threads 1 --device "$dev" --out "$E/select-$dev.jsonl" \
    --quiet >"$E/select-$dev.log" 2>&1 || { echo "select score on $dev failed: $(tail -1 "$E/select-$dev.log")"; status=1; }
done
python3 - "$E/select-cpu.jsonl" "$E/select-cuda.jsonl" <<'PY' || status=1
import json, sys
a, b = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
close = lambda x, y: x == y or (x is not None and y is not None and abs(x - y) <= 1e-4 * abs(x))
ok = len(a) == len(b) == 12 and all(s["id"] == t["id"] and s["n_tokens"] == t["n_tokens"] and
                                     all(close(s[k], t[k]) for k in ("ce_sum", "entropy_sum", "ifd"))
                                     for s, t in zip(a, b))
print(f"{'select':<11} {'ok' if ok else 'FAIL':<5} {len(b)} samples' ce, entropy and ifd = the CPU's")
sys.exit(0 if ok else 1)
PY
no_gpu no-gpu eval --model "$W/fam-tiny-llama-cpu/ckpt/step-0000003" --tasks mmlu --data-dir "$E/data" --device cuda
exit $status
