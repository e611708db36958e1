#!/usr/bin/env bash
# CPU training benchmark (issue 2): the same LLaMA-style model trained by `mindllm train` and by
# PyTorch (transformers LlamaForCausalLM, eager, fp32, same thread count), one after the other in
# one run. Prints tokens/s for both and the ratio. Records nothing: copy the result into
# docs/benchmarks.md by hand, with the date and machine.
#
# Shape: hidden 512, 8 layers, 8 heads (head dim 64, no GQA), SwiGLU 1408, vocab 8192, untied
# head, no biases: 34,087,424 parameters (25,698,816 without the two embedding tables).
# Sequences of 256 tokens, batch 8 (2048 tokens per optimizer step), AdamW, clip 1.0.
#
# Environment: THREADS (default: all cores), WARMUP (untimed steps, default 3), STEPS (timed
# steps, default 10), BUILD_DIR (default build-bench), NATIVE=1 to build mindllm with
# -march=native (a separate build dir, build-bench-native), SKIP_TORCH=1 / SKIP_MINDLLM=1,
# MINDLLM_BIN=path to time an existing binary instead of building, PRECISION=bf16 for mixed
# precision on both sides (mindllm --precision bf16; PyTorch autocast bf16), TORCH_PRECISION
# to give PyTorch another precision than mindllm (e.g. PRECISION=bf16 TORCH_PRECISION=fp32),
# IMPL=plain for the self-contained PyTorch module instead of transformers, PROFILE=1 for
# mindllm's per-op time table, ROUNDS=N to alternate the two sides N times (median ratio).
# The machine should be otherwise idle: tokens/s is the mean over the timed steps; the fastest
# step is printed too, as the better estimate when something else shares the cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-$(nproc)}
WARMUP=${WARMUP:-3}
STEPS=${STEPS:-10}
ROUNDS=${ROUNDS:-1}
BATCH=8
SEQ=256
IMPL=${IMPL:-hf}
PRECISION=${PRECISION:-fp32}
TORCH_PRECISION=${TORCH_PRECISION:-$PRECISION}
if [ "${NATIVE:-0}" = 1 ]; then
  BUILD_DIR=${BUILD_DIR:-build-bench-native}
  CMAKE_EXTRA=(-DMINDLLM_NATIVE=ON -DMINDLLM_TESTS=OFF)
else
  BUILD_DIR=${BUILD_DIR:-build-bench}
  CMAKE_EXTRA=(-DMINDLLM_TESTS=OFF)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mindllm-bench-train.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The model, as a Hugging Face LlamaConfig (defined once, in torch_llama.py); both sides read this file.
python3 bench/train_cpu/torch_llama.py --print-config > "$WORK/config.json"

# Random-token shards in the llm.c format (uint16 ids).
python3 bench/bench_tools.py shards "$WORK/data" --vocab 8192 --train-tokens $((1 << 20)) --val-tokens $((1 << 14))

# "<tokens/s> <fastest step tokens/s>" of a run's JSON line (bench_tools.py metrics, torch_llama.py).
rates() {
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("%.1f %.1f" % (r["tokens_per_s"], r["best_step_tokens_per_s"]))' "$1"
}

# One timed run of each side; each prints "<tokens/s> <fastest step tokens/s>".
run_mindllm() {
  rm -rf "$WORK/run"
  # PROFILE=1: mindllm's per-op timers (MINDLLM_PROFILE) print a table at the end.
  MINDLLM_PROFILE=${PROFILE:-0} OMP_NUM_THREADS=$THREADS "$MINDLLM" train --model "$WORK/config.json" --data "$WORK/data" \
    --out "$WORK/run" --steps $((WARMUP + STEPS)) --batch $BATCH --seq $SEQ --threads "$THREADS" \
    --lr 3e-4 --warmup 2 --eval-batches 1 --log-every 1 --precision "$PRECISION" >&2
  # Throughput over the timed steps: their tokens over their summed step times.
  python3 bench/bench_tools.py metrics "$WORK/run/metrics.jsonl" --warmup "$WARMUP" > "$WORK/mindllm.json"
  rates "$WORK/mindllm.json"
}
run_torch() {
  OMP_NUM_THREADS=$THREADS python3 bench/train_cpu/torch_llama.py --config "$WORK/config.json" --impl "$IMPL" \
    --precision "$TORCH_PRECISION" --batch $BATCH --seq $SEQ --threads "$THREADS" --warmup "$WARMUP" --steps "$STEPS" > "$WORK/torch.json"
  cat "$WORK/torch.json" >&2
  rates "$WORK/torch.json"
}

if [ "${SKIP_MINDLLM:-0}" != 1 ]; then
  if [ -n "${MINDLLM_BIN:-}" ]; then
    MINDLLM=$MINDLLM_BIN
  else
    echo "== building mindllm (Release) in $BUILD_DIR" >&2
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
      cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${CMAKE_EXTRA[@]}" >/dev/null
    fi
    cmake --build "$BUILD_DIR" --target mindllm -j "${JOBS:-$(nproc)}" >&2
    MINDLLM=$BUILD_DIR/mindllm
  fi
  # A build dir configured before OpenBLAS was linked statically keeps the shared library in its
  # cache, and with it OpenBLAS's own (on new Xeons: generic SSE3) kernel choice.
  if ldd "$MINDLLM" | grep -q libopenblas; then
    echo "warning: $MINDLLM links OpenBLAS dynamically (stale CMake cache?); delete $BUILD_DIR to rebuild" >&2
  fi
  MINDLLM_VERSION=$("$MINDLLM" --version 2>&1 | head -1)
  echo "$MINDLLM_VERSION" >&2
fi

# ROUNDS alternating runs of the two sides (mindllm, PyTorch, mindllm, ...): on a shared machine
# the speed drifts by tens of percent within minutes, and alternating exposes both sides to it
# alike. Each round prints its numbers; the last line gives the median ratio over the rounds.
RATIOS=()
for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "== round $round of $ROUNDS" >&2
  MINDLLM_TPS="" TORCH_TPS=""
  if [ "${SKIP_MINDLLM:-0}" != 1 ]; then
    echo "== mindllm train ($PRECISION): $THREADS threads, $WARMUP warmup + $STEPS timed steps" >&2
    out=$(run_mindllm)
    read -r MINDLLM_TPS MINDLLM_BEST <<<"$out"
    echo "mindllm: $MINDLLM_TPS tokens/s (fastest step: $MINDLLM_BEST)"
  fi
  if [ "${SKIP_TORCH:-0}" != 1 ]; then
    echo "== PyTorch ($IMPL, $TORCH_PRECISION): $THREADS threads, $WARMUP warmup + $STEPS timed steps" >&2
    out=$(run_torch)
    read -r TORCH_TPS TORCH_BEST <<<"$out"
    echo "pytorch: $TORCH_TPS tokens/s (fastest step: $TORCH_BEST)"
  fi
  if [ -n "$MINDLLM_TPS" ] && [ -n "$TORCH_TPS" ]; then
    python3 -c 'import sys; a = [float(x) for x in sys.argv[1:]]; print(f"ratio mindllm/pytorch: {a[0] / a[1]:.2f}x (fastest steps: {a[2] / a[3]:.2f}x)")' \
      "$MINDLLM_TPS" "$TORCH_TPS" "$MINDLLM_BEST" "$TORCH_BEST"
    RATIOS+=("$(python3 -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$MINDLLM_TPS" "$TORCH_TPS")")
  fi
done
if [ "${#RATIOS[@]}" -gt 1 ]; then
  python3 -c 'import statistics, sys; r = sorted(float(x) for x in sys.argv[1:]); print(f"median ratio over {len(r)} rounds: {statistics.median(r):.2f}x (range {r[0]:.2f}-{r[-1]:.2f}x)")' "${RATIOS[@]}"
fi
echo "($(date -u +%Y-%m-%d), $(nproc) cores, $THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)${MINDLLM_VERSION:+; $MINDLLM_VERSION})"
